"""``tts-host serve`` answering the official ``openai`` client over real HTTP: formats, streaming, errors
in OpenAI's shape, a bounded queue, a client that goes away, and the bind rules."""

from __future__ import annotations

import io
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from cli_helpers import error_line, run_cli_here
from sovits_fixtures import tiny_base_path

KEY = "test-key"
TEXT = "The quick brown fox jumps over the lazy dog."


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A real uvicorn server on a free loopback port, in a thread."""

    def __init__(self, home: Path, **options: int) -> None:
        import uvicorn

        from tts_host.host import get_host
        from tts_host.serve.app import create_app
        from tts_host.serve.service import SpeechService

        self.service = SpeechService(home, get_host(), **options)
        self.port = _free_port()
        config = uvicorn.Config(create_app(self.service, KEY), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, key: str = KEY):
        from openai import OpenAI

        return OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=120)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.service.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory, speaker_clips) -> Path:
    """A library with a tiny SoVITS base and a zero-shot voice 'ada' (its reference: two espeak sentences)."""
    home = tmp_path_factory.mktemp("serve") / "home"
    clips = speaker_clips("A", 2)
    ref = home.parent / "ref.wav"
    audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
    sf.write(ref, np.concatenate([a for a, _ in audio]), audio[0][1])
    previous = os.environ.get("TTS_HOST_HOME")
    os.environ["TTS_HOST_HOME"] = str(home)
    try:
        for args in (("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny"),
                     ("voices", "add", "ada", "--backend", "sovits", "--base", "tiny", "--ref", str(ref),
                      "--ref-text", " ".join(text for _, text in clips), "--language", "en")):
            code, out, err = run_cli_here(*args)
            assert code == 0, out + err
    finally:
        if previous is None:
            os.environ.pop("TTS_HOST_HOME", None)
        else:
            os.environ["TTS_HOST_HOME"] = previous
    return home


@pytest.fixture(scope="module")
def server(home):
    running = Server(home, workers=2, queue=8)
    yield running
    running.stop()


def test_the_openai_client_gets_wav_pcm_and_mp3_at_the_expected_rate_and_length(server):
    client = server.client()
    wav = client.audio.speech.create(model="tts-1", voice="ada", input=TEXT, response_format="wav").content
    audio, rate = sf.read(io.BytesIO(wav))
    assert rate == 32000 and np.abs(audio).max() > 1e-3
    seconds = len(audio) / rate
    pcm = client.audio.speech.create(model="sovits", voice="ada", input=TEXT, response_format="pcm").content
    assert len(pcm) % 2 == 0 and len(pcm) / 2 / 24000 == pytest.approx(seconds, abs=0.01)  # 24 kHz s16le
    mp3 = client.audio.speech.create(model="tts-1", voice="ada", input=TEXT, response_format="mp3").content
    decoded, mp3_rate = sf.read(io.BytesIO(mp3))
    assert mp3[:2] == b"\xff\xfb" and mp3_rate == 32000 and len(decoded) / mp3_rate == pytest.approx(seconds, abs=0.1)
    flac = client.audio.speech.create(model="tts-1", voice="ada", input=TEXT, response_format="flac").content
    assert sf.info(io.BytesIO(flac)).samplerate == 32000


def test_streamed_pcm_arrives_in_pieces_and_sums_to_the_speech(server):
    client = server.client()
    text = "The first sentence is here. A second one follows it. And then a third."
    pieces = []
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="ada", input=text,
                                                            response_format="pcm") as response:
        for piece in response.iter_bytes():
            pieces.append(piece)
    whole = client.audio.speech.create(model="tts-1", voice="ada", input=text, response_format="pcm").content
    assert len(pieces) >= 2 and len(b"".join(pieces)) == len(whole)  # the same seed: the same speech


def test_sse_sends_audio_deltas_then_done(server):
    import base64

    import httpx2 as httpx

    body = {"model": "tts-1", "voice": "ada", "input": TEXT, "response_format": "pcm", "stream_format": "sse"}
    with httpx.stream("POST", server.url + "/v1/audio/speech", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        events = [json.loads(line[len("data: "):]) for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    deltas = [e for e in events if e["type"] == "speech.audio.delta"]
    assert deltas and sum(len(base64.b64decode(e["audio"])) for e in deltas) > 24000


@pytest.mark.parametrize("request_body, status, param, code", [
    ({"voice": "nobody"}, 404, "voice", "voice_not_found"),
    ({"input": ""}, 400, "input", "invalid_value"),
    ({"input": "x" * 4097}, 400, "input", "string_above_max_length"),
    ({"response_format": "ogg"}, 400, "response_format", "invalid_value"),
    ({"speed": 9}, 400, "speed", "invalid_value"),
    ({"model": "llasa"}, 400, "model", "model_not_found"),
])
def test_bad_requests_get_openai_shaped_errors(server, request_body, status, param, code):
    import openai

    body = {"model": "tts-1", "voice": "ada", "input": TEXT, **request_body}
    with pytest.raises(openai.APIStatusError) as err:
        server.client().audio.speech.create(**body)
    assert err.value.status_code == status
    error = err.value.body if "message" in err.value.body else err.value.body["error"]
    assert error["param"] == param and error["code"] == code and error["message"]


def test_a_wrong_or_missing_key_gets_401(server):
    import httpx2 as httpx
    import openai

    with pytest.raises(openai.AuthenticationError) as err:
        server.client("wrong").audio.speech.create(model="tts-1", voice="ada", input=TEXT)
    assert err.value.status_code == 401
    response = httpx.get(server.url + "/v1/audio/voices")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


def test_listings_health_and_the_page(server):
    import httpx2 as httpx

    auth = {"Authorization": f"Bearer {KEY}"}
    voices = httpx.get(server.url + "/v1/audio/voices", headers=auth).json()["data"]
    assert [(v["id"], v["backend"], v["language"]) for v in voices] == [("ada", "sovits", "en")]
    models = {m.id for m in server.client().models.list().data}
    assert {"sovits", "xtts", "llasa", "tts-1"} <= models
    assert httpx.get(server.url + "/health").json()["status"] == "ok"
    page = httpx.get(server.url + "/")
    assert page.status_code == 200 and "/v1/audio/speech" in page.text


def test_eight_concurrent_clients_get_speech_and_a_ninth_beyond_the_queue_is_told_busy(home):
    import openai

    running = Server(home, workers=1, queue=7)  # room for 8 requests at once
    try:
        barrier = threading.Barrier(9)

        def ask(_: int) -> bytes | int:
            client = running.client()
            barrier.wait()
            try:
                return client.audio.speech.create(model="tts-1", voice="ada", input=TEXT, response_format="wav").content
            except openai.RateLimitError as exc:
                assert exc.body["code"] == "server_busy"
                return exc.status_code

        with ThreadPoolExecutor(9) as pool:
            answers = list(pool.map(ask, range(9)))
    finally:
        running.stop()
    busy = [a for a in answers if a == 429]
    audio = [a for a in answers if isinstance(a, bytes)]
    assert len(busy) == 1 and len(audio) == 8
    assert all(sf.info(io.BytesIO(a)).samplerate == 32000 for a in audio)
    assert len({a for a in audio}) == 1  # every answer is the same speech (same text, voice and seed)


def test_a_client_that_goes_away_stops_its_synthesis(server):
    import httpx2 as httpx

    text = " ".join(f"This is sentence number {n} of a long text." for n in range(40))
    body = {"model": "tts-1", "voice": "ada", "input": text, "response_format": "pcm"}
    before = httpx.get(server.url + "/health").json()["stopped"]
    with httpx.stream("POST", server.url + "/v1/audio/speech", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {KEY}"}) as response:
        next(response.iter_bytes())  # the first sentence arrives, then the client leaves
    deadline = time.monotonic() + 60
    while httpx.get(server.url + "/health").json()["stopped"] == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert httpx.get(server.url + "/health").json()["stopped"] == before + 1


def test_serve_refuses_an_open_address_without_a_key(monkeypatch):
    monkeypatch.delenv("TTS_HOST_API_KEY", raising=False)
    code, _, err = run_cli_here("serve", "--host", "0.0.0.0")
    assert code == 1 and "--api-key" in error_line(err) and "--insecure" in error_line(err)


def test_the_web_page_speaks_a_voice_in_a_real_browser(server):
    """Headless Chromium (the system's) loads the page, enters the key, picks the voice and gets audio."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.fail("Chromium is not installed: `apt-get install chromium chromium-driver` (CI installs it)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    try:
        chrome.get(server.url + "/")
        key = chrome.find_element(By.ID, "key")
        key.send_keys(KEY)
        chrome.execute_script("document.getElementById('key').dispatchEvent(new Event('change'))")
        WebDriverWait(chrome, 30).until(lambda c: len(Select(c.find_element(By.ID, "voice")).options) == 1)
        assert Select(chrome.find_element(By.ID, "voice")).first_selected_option.get_attribute("value") == "ada"
        chrome.find_element(By.ID, "speak").click()
        WebDriverWait(chrome, 60).until(lambda c: c.execute_script(
            "const p = document.getElementById('player'); return p.readyState >= 1 && p.duration > 0;"))
        duration = chrome.execute_script("return document.getElementById('player').duration")
        assert "received" in chrome.find_element(By.ID, "status").text and duration > 0.1
        assert chrome.find_element(By.ID, "download").get_attribute("href").startswith("blob:")
    finally:
        chrome.quit()
