"""pygeoapi process plugins in our job runtime: `processes.plugins` in config.yml maps an id to a dotted path.

The other direction needs no bridge: every Processor of ours is a pygeoapi plugin (see Processor.execute).
"""

from __future__ import annotations

import base64
import importlib
from collections.abc import Collection
from typing import Any

from pygeoapi.process.base import BaseProcessor, ProcessorExecuteError

from core.config import ProcessesConfig
from processes.base import Context, Processor
from processes.errors import InputError, JobFailed


class PluginError(ValueError):
    """A configured plugin cannot be used; the message names the process id and the dotted path."""


def _text(value: Any, default: str = "") -> str:
    """pygeoapi's {language: text} (or a plain text) -> one text, English first."""
    if isinstance(value, dict):
        return str(value.get("en") or next(iter(value.values()), default))
    return default if value is None else str(value)


def _params(params: dict[str, Any]) -> dict[str, Any]:
    """Inputs or outputs with one-language titles and descriptions."""
    return {k: {**v, "title": _text(v.get("title"), k), "description": _text(v.get("description"))}
            for k, v in params.items()}


def describe(process_id: str, meta: dict[str, Any]) -> dict[str, Any]:
    """Our PROCESS_METADATA from a pygeoapi plugin's."""
    return {
        "id": process_id, "version": str(meta.get("version", "0.0.0")),
        "title": _text(meta.get("title"), process_id), "description": _text(meta.get("description")),
        "keywords": list(meta.get("keywords", [])),
        "jobControlOptions": list(meta.get("jobControlOptions") or ["sync-execute"]),
        "outputTransmission": list(meta.get("outputTransmission") or ["value"]),
        "inputs": _params(meta.get("inputs", {})), "outputs": _params(meta.get("outputs", {})),
        "example": meta.get("example"), "links": list(meta.get("links", [])),
    }


class PluginProcessor(Processor):
    """A pygeoapi plugin run as one of our processes: a fresh plugin instance per job, as pygeoapi does."""

    def __init__(self, plugin_class: type[BaseProcessor], path: str, config: ProcessesConfig) -> None:
        self.plugin_class = plugin_class
        self.path = path
        super().__init__(config)

    def run(self, inputs: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """plugin.execute(data, outputs) -> {output id: value}; its ProcessorExecuteError -> InputError/JobFailed."""
        data = {k: v for k, v in inputs.items() if k != "_outputs"}
        declared = list(self.PROCESS_METADATA["outputs"])
        wanted = inputs.get("_outputs") or declared
        plugin = self.plugin_class({"name": self.path})
        plugin.set_job_id(ctx.job_id)
        selected = plugin.supports_outputs and wanted != declared  # pygeoapi passes outputs only to those that take it
        extra: dict[str, Any] = {"outputs": {o: {} for o in wanted}} if selected else {}
        try:
            mimetype, result = plugin.execute(data, **extra)
        except ProcessorExecuteError as err:
            message = f"{self.id}: {err}"
            if int(err.http_status_code) < 500:
                raise InputError(message) from err
            raise JobFailed(message, int(err.http_status_code)) from err
        return self.outputs(mimetype, result)

    def outputs(self, mimetype: str, result: Any) -> dict[str, Any]:
        """pygeoapi's result (one {id, value}, a list of them, {id: value}, or one bare value) keyed by output id."""
        declared = self.PROCESS_METADATA["outputs"]
        if isinstance(result, bytes):
            try:
                result = result.decode("utf-8")
            except UnicodeDecodeError:
                result = {"value": base64.b64encode(result).decode("ascii"), "encoding": "base64",
                          "mediaType": mimetype}
        if isinstance(result, dict) and set(result) >= {"id", "value"} and result["id"] in declared:
            return {result["id"]: result["value"]}
        if isinstance(result, list) and result and all(isinstance(r, dict) and r.get("id") in declared
                                                       for r in result):
            return {r["id"]: r.get("value") for r in result}
        if isinstance(result, dict) and result and set(result) <= set(declared):
            return result
        if len(declared) == 1:
            return {next(iter(declared)): result}
        raise JobFailed(f"{self.id}: {self.path} returned a {type(result).__name__} that names none of its outputs "
                        f"({', '.join(declared)})")


def load_plugin(process_id: str, path: str, config: ProcessesConfig) -> PluginProcessor:
    """The configured pygeoapi plugin at `path` as our process `process_id`; PluginError says what is wrong."""
    where = f"config.yml processes.plugins.{process_id}: {path!r}"
    module_name, _, class_name = path.rpartition(".")
    try:
        plugin_class = getattr(importlib.import_module(module_name), class_name)
    except ImportError as err:
        raise PluginError(f"{where} does not import: {err}") from err
    except AttributeError:
        raise PluginError(f"{where}: module {module_name!r} has no {class_name!r}") from None
    if not (isinstance(plugin_class, type) and issubclass(plugin_class, BaseProcessor)):
        raise PluginError(f"{where} is not a pygeoapi BaseProcessor subclass")
    try:
        meta = plugin_class({"name": path}).metadata
    except Exception as err:
        raise PluginError(f"{where} could not be created: {type(err).__name__}: {err}") from err
    # one class per plugin: PROCESS_METADATA is class-level, as for our own processes
    adapter: type[PluginProcessor] = type(f"{plugin_class.__name__}Adapter", (PluginProcessor,),
                                          {"PROCESS_METADATA": describe(process_id, meta)})
    return adapter(plugin_class, path, config)


def load_plugins(config: ProcessesConfig, taken: Collection[str] = ()) -> list[Processor]:
    """Every plugin of config.plugins; an id already taken by one of ours is a PluginError."""
    clash = sorted(set(config.plugins) & set(taken))
    if clash:
        raise PluginError(f"config.yml processes.plugins: {', '.join(clash)} is already a process of this server")
    return [load_plugin(pid, path, config) for pid, path in config.plugins.items()]
