"""pygeoapi plugins run in our job runtime (config.yml processes.plugins), and ours run as pygeoapi plugins."""

from __future__ import annotations

import re
from typing import Any

import pytest
from process_helpers import wait_for
from pydantic import ValidationError
from pygeoapi.plugin import load_plugin as pygeoapi_load_plugin
from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError
from pygeoapi.process.manager.dummy import DummyManager

from core.config import ProcessesConfig, load_config
from core.db import Database
from processes.base import Context
from processes.echo import EchoProcessor
from processes.errors import InputError, JobFailed
from processes.pygeoapi_bridge import PluginError, load_plugin
from server.processes_api import processors

URL = "/processes/hello-world/execution"


class FailingProcessor(BaseProcessor):  # type: ignore[misc]
    """A pygeoapi plugin that rejects its input (400) or fails (500), as `status` says."""

    def __init__(self, processor_def: dict[str, Any]) -> None:
        super().__init__(processor_def, {
            "id": "fails", "version": "1", "title": {"en": "Fails", "ko": "실패"}, "description": "always fails",
            "jobControlOptions": ["sync-execute"], "example": {"inputs": {"status": 400}},
            "inputs": {"status": {"title": "status", "schema": {"type": "integer"}, "minOccurs": 1}},
            "outputs": {"a": {"schema": {"type": "string"}}, "b": {"schema": {"type": "string"}}}})

    def execute(self, data: dict[str, Any], outputs: dict[str, Any] | None = None) -> tuple[str, Any]:
        """Raise the ProcessorExecuteError asked for, or return something naming none of the outputs."""
        if data["status"] == 0:
            return "application/json", {"neither": 1}
        err = ProcessorExecuteError(f"failed with {data['status']}")
        err.http_status_code = data["status"]
        raise err


def _exception(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    body = resp.get_json()
    assert isinstance(body, dict) and body.get("type") and body.get("description"), body
    return body


def test_config_enables_hello_world() -> None:
    assert load_config().processes.plugins["hello-world"] == "pygeoapi.process.hello_world.HelloWorldProcessor"


def test_listed_and_described(client: Any) -> None:
    listed = {p["id"]: p for p in client.get("/processes?limit=1000").get_json()["processes"]}
    assert {"echo", "hello-world"} <= set(listed)
    hello = listed["hello-world"]
    assert hello["title"] == "Hello World" and hello["version"] == "0.2.0"  # English of pygeoapi's {en, fr}
    assert hello["jobControlOptions"] == ["sync-execute", "async-execute"]
    desc = client.get("/processes/hello-world").get_json()
    assert desc["inputs"]["name"]["minOccurs"] == 1 and desc["inputs"]["name"]["schema"] == {"type": "string"}
    assert desc["outputs"]["echo"]["title"] == "Hello, world"
    assert desc["example"]["inputs"]["name"] == "World"


def test_sync(client: Any) -> None:
    resp = client.post(URL, json={"inputs": {"name": "Sejong"}})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_data(as_text=True) == "Hello Sejong!"
    doc = client.post(URL, json={"inputs": {"name": "Sejong", "message": "세종시"}, "response": "document"})
    assert doc.status_code == 200 and doc.get_json() == {"echo": "Hello Sejong! 세종시"}


def test_async_job(client: Any) -> None:
    resp = client.post(URL, json={"inputs": {"name": "Sejong"}}, headers={"Prefer": "respond-async"})
    assert resp.status_code == 201, resp.get_data(as_text=True)
    info = resp.get_json()
    assert info["processID"] == "hello-world" and info["jobID"] in resp.headers["Location"]
    done = wait_for(lambda: client.get(f"/jobs/{info['jobID']}").get_json(),
                    lambda s: s["status"] not in ("accepted", "running"), 30, "hello-world job end")
    assert done["status"] == "successful" and done["progress"] == 100
    res = client.get(f"/jobs/{info['jobID']}/results")
    assert res.status_code == 200 and res.get_data(as_text=True) == "Hello Sejong!"


@pytest.mark.parametrize(("inputs", "word"), [({}, "'name' is required"), ({"name": "a", "x": 1}, "unknown input")])
def test_bad_inputs_400(client: Any, inputs: dict[str, Any], word: str) -> None:
    body = _exception(client.post(URL, json={"inputs": inputs}), 400)
    assert body["code"] == "InvalidParameterValue" and word in body["description"]


@pytest.mark.parametrize(("path", "says"), [
    ("no_such_package.module.Cls", "does not import"),
    ("pygeoapi.process.hello_world.NoSuchProcessor", "has no 'NoSuchProcessor'"),
    ("collections.OrderedDict", "is not a pygeoapi BaseProcessor subclass"),
])
def test_bad_plugin_path_is_a_clear_error(path: str, says: str) -> None:
    with pytest.raises(PluginError) as err:
        processors(ProcessesConfig(plugins={"broken": path}))
    assert f"processes.plugins.broken: {path!r}" in str(err.value) and says in str(err.value)


def test_bad_plugin_config() -> None:
    with pytest.raises(ValidationError, match="not a dotted path"):
        ProcessesConfig(plugins={"x": "HelloWorldProcessor"})
    with pytest.raises(PluginError, match="echo is already a process"):
        processors(ProcessesConfig(plugins={"echo": "pygeoapi.process.echo.EchoProcessor"}))


def test_bad_plugin_stops_app_start(dsn: str) -> None:
    from server.app import create_app

    cfg = load_config()
    cfg = cfg.model_copy(update={"processes": ProcessesConfig(plugins={"nope": "no_such_package.Cls"})})
    with pytest.raises(PluginError, match=re.escape("'no_such_package.Cls' does not import")):
        create_app(cfg, dsn=dsn)


def test_plugin_errors_translate(dsn: str) -> None:
    proc = load_plugin("fails", f"{__name__}.FailingProcessor", ProcessesConfig())
    assert proc.PROCESS_METADATA["title"] == "Fails" and proc.id == "fails"
    ctx = Context(db=Database(dsn), config=ProcessesConfig(), job_id="t")
    with pytest.raises(InputError, match="fails: failed with 400"):
        proc.run({"status": 400}, ctx)
    with pytest.raises(JobFailed, match="fails: failed with 503") as failed:
        proc.run({"status": 503}, ctx)
    assert failed.value.http_status == 503
    with pytest.raises(JobFailed, match="names none of its outputs"):
        proc.run({"status": 0}, ctx)


def test_plugin_result_shapes() -> None:
    proc = load_plugin("fails", f"{__name__}.FailingProcessor", ProcessesConfig())
    assert proc.outputs("application/json", [{"id": "a", "value": 1}, {"id": "b", "value": 2}]) == {"a": 1, "b": 2}
    assert proc.outputs("application/json", {"b": "x"}) == {"b": "x"}
    hello = load_plugin("hi", "pygeoapi.process.hello_world.HelloWorldProcessor", ProcessesConfig())
    assert hello.outputs("text/plain", b"hi") == {"echo": "hi"}
    assert hello.outputs("image/png", b"\x89PNG") == {
        "echo": {"value": "iVBORw==", "encoding": "base64", "mediaType": "image/png"}}


def test_our_process_through_pygeoapi_loader() -> None:
    echo = pygeoapi_load_plugin("process", {"name": "processes.echo.EchoProcessor"})
    assert isinstance(echo, EchoProcessor) and echo.name == "processes.echo.EchoProcessor"
    assert echo.metadata["id"] == "echo"
    assert echo.execute({"echoInput": "세종"}) == ("application/json", {"echoInput": "세종"})
    with pytest.raises(ProcessorExecuteError, match="'echoInput' is required"):
        echo.execute({})


def test_our_process_through_pygeoapi_manager() -> None:
    manager = DummyManager({"name": "Dummy", "processes": {
        "echo": {"processor": {"name": "processes.echo.EchoProcessor"}},
        "accessibility": {"processor": {"name": "processes.accessibility.AccessibilityProcessor"}}}})
    _, mimetype, outputs, status, _ = manager.execute_process("echo", {"echoInput": "teststring"})
    assert (mimetype, outputs, status.value) == ("application/json", {"echoInput": "teststring"}, "successful")
    example = manager.get_processor("accessibility").metadata["example"]["inputs"]
    _, _, failed, status, _ = manager.execute_process("accessibility", example)
    assert status.value == "failed" and "layer registry" in failed["description"], failed
