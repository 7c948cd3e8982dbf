"""``tts-host serve``: the voice library as an OpenAI-compatible speech server."""

from __future__ import annotations

import ipaddress
import os

import click

from tts_host.errors import TTSHostError

KEY_VARIABLE = "TTS_HOST_API_KEY"


def loopback(host: str) -> bool:
    """Whether ``host`` names only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port to bind.")
@click.option("--api-key", default=None, help=f"Key clients must send as a bearer token (default: ${KEY_VARIABLE}).")
@click.option("--insecure", is_flag=True, help="Allow a non-loopback address without an API key.")
@click.option("--workers", type=int, default=2, show_default=True, help="Synthesis workers (parallel requests).")
@click.option("--queue", type=int, default=8, show_default=True,
              help="Requests that may wait for a worker; more get 429.")
@click.option("--models", type=int, default=2, show_default=True, help="Models kept loaded (least recently used out).")
def serve_command(host: str, port: int, api_key: str | None, insecure: bool, workers: int, queue: int,
                  models: int) -> None:
    """Serve the voice library over HTTP: OpenAI's POST /v1/audio/speech, a web page at /."""
    import uvicorn

    from tts_host.home import default_home
    from tts_host.host import get_host
    from tts_host.serve.app import create_app
    from tts_host.serve.service import SpeechService

    api_key = api_key or os.environ.get(KEY_VARIABLE) or None
    if not loopback(host) and not api_key and not insecure:
        raise TTSHostError(f"--host {host} is reachable from other machines: set --api-key (or ${KEY_VARIABLE}), "
                           "or pass --insecure to serve it without one")
    service = SpeechService(default_home(), get_host(), workers=workers, queue=queue, models=models)
    click.echo(f"serving {len(service.voices())} voice(s) on http://{host}:{port} "
               f"({'API key required' if api_key else 'no API key'}; {workers} workers, queue {queue})")
    try:
        uvicorn.run(create_app(service, api_key), host=host, port=port, log_level="warning")
    finally:
        service.close()


COMMANDS = [serve_command]
