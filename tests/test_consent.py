"""Consent on record: a cloned voice keeps its speaker's statement, the audio's source and a consent recording;
``voices show``, archives and the server's voice listing carry them; bad consent input is refused up front."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from cli_helpers import error_line, run_cli_here
from sovits_fixtures import tiny_base_path

STATEMENT = "I, Ada Example, agree that my voice is cloned for this project."


def _reference(speaker_clips, tmp_path):
    clips = speaker_clips("A", 2)
    ref = tmp_path / "ref.wav"
    audio = [sf.read(wav, dtype="float32") for wav, _ in clips]
    sf.write(ref, np.concatenate([a for a, _ in audio]), audio[0][1])
    return ref, " ".join(text for _, text in clips), clips[0][0]


def test_consent_is_kept_shown_archived_and_listed(tmp_path_factory, speaker_clips, tmp_path, monkeypatch):
    from tts_host.host import get_host
    from tts_host.serve.service import SpeechService

    ref, text, recording = _reference(speaker_clips, tmp_path)
    home = tmp_path / "home"
    monkeypatch.setenv("TTS_HOST_HOME", str(home))
    assert run_cli_here("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")[0] == 0
    code, out, err = run_cli_here("voices", "add", "ada", "--backend", "sovits", "--ref", str(ref), "--ref-text", text,
                                  "--consent", STATEMENT, "--source", "studio session, 2026-11-30",
                                  "--consent-recording", str(recording))
    assert code == 0, out + err
    shown = json.loads(run_cli_here("voices", "show", "ada", "--json")[1])
    consent = shown["consent"]
    assert consent["statement"] == STATEMENT and consent["source"] == "studio session, 2026-11-30"
    assert consent["recording"] == "consent/recording.wav"
    assert {"consent", "consent:recording"} <= {f["role"] for f in shown["files"]}

    archive = tmp_path / "ada.ttsvoice"
    assert run_cli_here("voices", "export", "ada", "-o", str(archive))[0] == 0
    monkeypatch.setenv("TTS_HOST_HOME", str(tmp_path / "other"))
    code, out, err = run_cli_here("voices", "import", str(archive))
    assert code == 0, out + err
    assert json.loads(run_cli_here("voices", "show", "ada", "--json")[1])["consent"] == consent

    service = SpeechService(tmp_path / "other", get_host())
    try:
        [listed] = service.voices()
    finally:
        service.close()
    assert listed["consent"] == {"statement": STATEMENT, "source": "studio session, 2026-11-30", "recording": True}


def test_bad_consent_input_is_refused_before_any_work(tmp_path_factory, speaker_clips, tmp_path, monkeypatch):
    ref, text, _ = _reference(speaker_clips, tmp_path)
    monkeypatch.setenv("TTS_HOST_HOME", str(tmp_path / "home"))
    assert run_cli_here("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")[0] == 0
    broken = tmp_path / "consent.wav"
    broken.write_bytes(b"RIFF not really")
    for args, message in ((("--consent", "  "), "consent statement"),
                          (("--source", "a studio"), "go with --consent"),
                          (("--consent", "yes", "--consent-recording", str(broken)), "consent.wav"),
                          (("--consent", "x" * 2001), "at most 2000")):
        code, _, err = run_cli_here("voices", "add", "ada", "--backend", "sovits", "--ref", str(ref), "--ref-text",
                                    text, *args)
        assert code == 1 and message in error_line(err), (args, err)
    assert json.loads(run_cli_here("voices", "list", "--json")[1]) == []


def test_consent_is_put_on_record_for_an_existing_voice_and_replaced(tmp_path_factory, speaker_clips, tmp_path,
                                                                     monkeypatch):
    ref, text, recording = _reference(speaker_clips, tmp_path)
    monkeypatch.setenv("TTS_HOST_HOME", str(tmp_path / "home"))
    assert run_cli_here("base", "add", "sovits", str(tiny_base_path(tmp_path_factory)), "--name", "tiny")[0] == 0
    assert run_cli_here("voices", "add", "ada", "--backend", "sovits", "--ref", str(ref), "--ref-text", text)[0] == 0
    show = lambda: json.loads(run_cli_here("voices", "show", "ada", "--json")[1])  # noqa: E731
    before = show()
    assert before["consent"] is None

    code, out, err = run_cli_here("voices", "consent", "ada", "--consent", STATEMENT, "--source", "phone call",
                                  "--consent-recording", str(recording))
    assert code == 0 and "recorded consent and recording for voice 'ada'" in out, out + err
    recorded = show()
    assert recorded["consent"]["statement"] == STATEMENT and recorded["consent"]["recording"] == "consent/recording.wav"
    roles = {f["role"]: f for f in recorded["files"]}
    assert {"consent", "consent:recording"} <= set(roles)
    kept = {f["role"]: f["sha256"] for f in before["files"]}  # the voice's other files are the same blobs
    assert all(roles[role]["sha256"] == sha for role, sha in kept.items())

    code, out, _ = run_cli_here("voices", "consent", "ada", "--consent", "Agreed again, without a recording.")
    assert code == 0 and "replaced consent for voice 'ada'" in out
    replaced = show()
    assert replaced["consent"]["statement"] == "Agreed again, without a recording." and \
        replaced["consent"]["recording"] is None
    assert "consent:recording" not in {f["role"] for f in replaced["files"]}  # the old recording went with it
    assert run_cli_here("voices", "verify", "ada")[0] == 0

    broken = tmp_path / "consent.wav"
    broken.write_bytes(b"RIFF not really")
    for args, message in (((), "give the speaker's statement with --consent"),
                          (("--source", "a studio"), "go with --consent"),
                          (("--consent", "yes", "--consent-recording", str(broken)), "consent.wav")):
        code, _, err = run_cli_here("voices", "consent", "ada", *args)
        assert code == 1 and message in error_line(err), (args, err)
    code, _, err = run_cli_here("voices", "consent", "nobody", "--consent", "yes")
    assert code == 1 and "nobody" in error_line(err)
    assert show()["consent"] == replaced["consent"]  # the refusals changed nothing
