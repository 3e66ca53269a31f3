"""`bundled`: load every bundled real dataset for the layers of config.yml (skipping unchanged ones)."""

from __future__ import annotations

import csv
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from core.config import REPO_ROOT, load_config
from loaders.core import catalog_entry, prepare
from loaders.errors import LoadError
from loaders.recipes import Dataset, load_dataset, sha256

MANIFEST = Path(__file__).with_name("manifest.tsv")


def manifest() -> dict[str, dict[str, str]]:
    """path -> {sha256, url, licence} from loaders/manifest.tsv (copy of the data folder's MANIFEST.tsv)."""
    with MANIFEST.open(encoding="utf-8") as fh:
        return {r["path"]: r for r in csv.DictReader(fh, delimiter="\t")}


def layer_modules(only: list[str] | None = None) -> dict[str, ModuleType]:
    """Bundled recipes (loaders/datasets/<id>.py) of the layer ids of config.yml (optionally a subset).

    A layer without a recipe module has no bundled data: it is served once something loads its table.
    """
    ids = list(load_config().layers)
    if only:
        unknown = [o for o in only if o not in ids]
        if unknown:
            raise LoadError(f"unknown layer(s) {', '.join(unknown)}; config.yml has {', '.join(ids)}")
        ids = [i for i in ids if i in only]
    out: dict[str, ModuleType] = {}
    for lid in ids:
        if importlib.util.find_spec(f"loaders.datasets.{lid}") is not None:
            out[lid] = importlib.import_module(f"loaders.datasets.{lid}")
    return out


def datasets(only: list[str] | None = None) -> list[Dataset]:
    """All bundled datasets of the selected layers."""
    out: list[Dataset] = []
    for mod in layer_modules(only).values():
        out.extend(getattr(mod, "DATASETS", []))
    return out


def needed_files(dsets: list[Dataset]) -> list[str]:
    """Data-dir files the datasets read."""
    return sorted({f for d in dsets for f in d.files})


def resolve_data_dir(data_dir: Path | None, files: list[str]) -> Path:
    """The data folder: given, SEJONG_DATA_DIR, config (../shared/data); else fetch by manifest into var/data/."""
    base = data_dir or load_config().data.path()
    if base.is_dir() and all((base / f).exists() for f in files):
        return base
    return fetch_files(files, REPO_ROOT / "var" / "data", missing_from=base)


def fetch_files(files: list[str], target: Path, missing_from: Path) -> Path:
    """Download files listed in the manifest (sha256-checked with pooch) into target."""
    entries = manifest()
    try:
        import pooch
    except ImportError:  # pragma: no cover - pooch is a dependency
        pooch = None
    failed: list[str] = []
    for rel in files:
        dest = target / rel
        ent = entries.get(rel)
        if dest.exists() and ent and sha256(dest) == ent["sha256"]:
            continue
        if not ent or not ent["url"].startswith("http") or pooch is None:
            failed.append(rel)
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            pooch.retrieve(ent["url"], known_hash=f"sha256:{ent['sha256']}", fname=dest.name, path=dest.parent,
                           progressbar=False)
        except Exception as exc:
            print(f"download failed for {rel}: {exc}", file=sys.stderr)
            failed.append(rel)
    if failed:
        lines = "\n".join(f"  {f}  ({entries.get(f, {}).get('url', 'no URL in manifest')})" for f in failed)
        raise LoadError(f"data folder {missing_from} is missing and these files could not be downloaded:\n{lines}\n"
                        f"Put them under {missing_from} (or set SEJONG_DATA_DIR) with the same relative paths, "
                        f"or copy them to {target}.")
    return target


def unchanged(dsn: str, ds: Dataset, data_dir: Path) -> int | None:
    """Rows loaded last time when every source file's sha256 is unchanged (None: load needed)."""
    if ds.build is None:
        return None
    entry = catalog_entry(dsn, ds.spec.qualified)
    if not entry:
        return None
    recorded = {s.get("file"): s.get("sha256") for s in entry["sources"] or []}
    for f in ds.files:
        if recorded.get(f) != sha256(data_dir / f):
            return None
    return int(entry["rows_loaded"])


def load_bundled(dsn: str, data_dir: Path | None = None, force: bool = False,
                 only: list[str] | None = None) -> dict[str, int]:
    """Load all bundled datasets; returns table -> rows. Unchanged sources are skipped unless force."""
    dsets = datasets(only)
    base = resolve_data_dir(data_dir, needed_files(dsets))
    prepare(dsn, [d.spec for d in dsets])
    result: dict[str, int] = {}
    for ds in dsets:
        rows = None if force else unchanged(dsn, ds, base)
        if rows is not None:
            print(f"{ds.spec.qualified}: unchanged ({rows:,} rows), skipped", file=sys.stderr)
            if ds.after:
                ds.after(dsn)
            result[ds.spec.qualified] = rows
            continue
        res = load_dataset(dsn, ds, base)
        print(f"{ds.spec.qualified}: {res.rows:,} rows loaded (skipped {res.skipped}, repaired {res.repaired}, "
              f"version {res.data_version})", file=sys.stderr)
        result[ds.spec.qualified] = res.rows
    if not only:
        from loaders.osm_network import load_bundled_networks

        result.update(load_bundled_networks(dsn, base, force))
    if not only or "air_quality_readings" in only:  # surfaces follow the readings (skipped while unchanged)
        from loaders.surfaces.build import build_all

        result.update({f"meta.surfaces:{cid}": n for cid, n in build_all(dsn, force).items()})
    return result
