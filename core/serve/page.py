"""The one web page the server serves at ``/``: pick a voice, type text, hear it, download it (no build step)."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tts-host</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
 textarea { width: 100%; height: 6rem; }
 label { display: block; margin: .8rem 0 .3rem; }
 #status { color: #555; min-height: 1.2rem; }
</style>
</head>
<body>
<h1>tts-host</h1>
<label for="key">API key (when the server needs one)</label>
<input id="key" type="password" autocomplete="off">
<label for="voice">Voice</label>
<select id="voice"></select>
<label for="text">Text</label>
<textarea id="text">Hello from tts-host.</textarea>
<p><button id="speak">Speak</button> <a id="download" download="speech.wav" hidden>Download</a></p>
<p id="status"></p>
<audio id="player" controls></audio>
<script>
const $ = (id) => document.getElementById(id);
const headers = () => {
  const key = $("key").value.trim();
  return key ? {"Authorization": "Bearer " + key} : {};
};
async function loadVoices() {
  const response = await fetch("/v1/audio/voices", {headers: headers()});
  const body = await response.json();
  if (!response.ok) { $("status").textContent = body.error.message; return; }
  $("voice").replaceChildren(...body.data.map((v) => {
    const option = document.createElement("option");
    option.value = v.id;
    option.textContent = v.id + " (" + v.backend + (v.language ? ", " + v.language : "") + ")";
    return option;
  }));
}
async function speak() {
  $("status").textContent = "speaking...";
  const started = performance.now();
  const response = await fetch("/v1/audio/speech", {
    method: "POST", headers: {"Content-Type": "application/json", ...headers()},
    body: JSON.stringify({model: "tts-1", voice: $("voice").value, input: $("text").value,
                          response_format: "wav"}),
  });
  if (!response.ok) { $("status").textContent = (await response.json()).error.message; return; }
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  $("player").src = url;
  $("download").href = url;
  $("download").hidden = false;
  $("status").textContent = "received " + blob.size + " bytes in " + Math.round(performance.now() - started) + " ms";
  await $("player").play().catch(() => {});
}
$("speak").addEventListener("click", speak);
$("key").addEventListener("change", loadVoices);
loadVoices();
</script>
</body>
</html>
"""
