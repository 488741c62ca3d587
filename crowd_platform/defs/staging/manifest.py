"""Delivery manifests: the producer's list of the files in a delivery folder, verified at ingest.

An extension of the landing contract (docs/reliability.md, "Delivery manifests"), optional per
folder. A delivery folder `events/date=YYYY-MM-DD/` may hold one or more manifests named
`manifest*.json` (for example `manifest.json` for the day's delivery and `manifest-late-001.json`
for a file delivered later), each

    {"manifest_version": 1,
     "files": [{"name": "part-00000.parquet", "bytes": 1234, "sha256": "<64 hex digits>"}, ...]}

When a folder has a manifest, it is the complete list of the folder's event files: before a run
writes anything, every event file the run reads must be listed with its exact size and SHA-256,
and every listed file must be there. Otherwise the run fails with a `ManifestError` naming the
file. That catches what no reader notices: bytes flipped inside a Parquet data page decode into
wrong values without any error (measured in docs/reliability.md), and a file still arriving or cut
short has fewer bytes than listed. A folder without a manifest is read unverified, as before.

Only the standard library here: the simulator (the demo's producer) writes manifests with
`write_manifest`, without importing Dagster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MANIFEST_PATTERN = "manifest*.json"
MANIFEST_VERSION = 1
EVENT_FILE_SUFFIXES = (".parquet", ".csv", ".csv.gz")  # as ingest.EVENT_FILE_SUFFIXES
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """A delivery does not match its manifest (or the manifest is unreadable); names the file."""


@dataclass(frozen=True)
class ManifestEntry:
    name: str
    size: int
    sha256: str
    listed_in: str  # the manifest's file name, for messages


def file_digest(path: Path) -> tuple[int, str]:
    """(size in bytes, SHA-256 hex digest) of a file, read in chunks."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def write_manifest(folder: Path, files: Iterable[Path], name: str = "manifest.json") -> Path:
    """Write a manifest of `files` (in `folder`) as they are on disk now; deterministic bytes."""
    entries = []
    for path in sorted(files, key=lambda p: p.name):
        size, sha256 = file_digest(path)
        entries.append({"name": path.name, "bytes": size, "sha256": sha256})
    target = folder / name
    target.write_text(json.dumps({"manifest_version": MANIFEST_VERSION, "files": entries}, indent=1) + "\n")
    return target


def manifests(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(MANIFEST_PATTERN) if p.is_file()) if folder.is_dir() else []


def read_manifests(folder: Path, landing_dir: Path) -> dict[str, ManifestEntry]:
    """The entries of every manifest in `folder`, by file name; an empty dict when there is none."""
    entries: dict[str, ManifestEntry] = {}
    for path in manifests(folder):
        relative = path.relative_to(landing_dir).as_posix()
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("manifest_version") != MANIFEST_VERSION:
                raise ValueError(f"manifest_version must be {MANIFEST_VERSION}")
            listed = [
                ManifestEntry(str(item["name"]), int(item["bytes"]), str(item["sha256"]).lower(), path.name)
                for item in document["files"]
            ]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ManifestError(f"{relative}: not a valid delivery manifest ({exc})") from None
        for entry in listed:
            known = entries.get(entry.name)
            if known is not None and (known.size, known.sha256) != (entry.size, entry.sha256):
                raise ManifestError(
                    f"{relative}: lists {entry.name} with another size or checksum than {known.listed_in}"
                )
            entries[entry.name] = entry
    return entries


def verify_folder(folder: Path, landing_dir: Path) -> int:
    """Check a delivery folder against its manifests; returns the number of files verified."""
    entries = read_manifests(folder, landing_dir)
    if not entries:
        return 0
    prefix = folder.relative_to(landing_dir).as_posix()
    delivered = {p.name: p for p in folder.iterdir() if p.is_file() and p.name.endswith(EVENT_FILE_SUFFIXES)}
    for name, entry in sorted(entries.items()):
        path = delivered.get(name)
        if path is None:
            raise ManifestError(f"{prefix}/{name}: listed in {entry.listed_in} but not delivered")
        size, sha256 = file_digest(path)
        if size != entry.size:
            raise ManifestError(
                f"{prefix}/{name}: {size} bytes, {entry.listed_in} lists {entry.size} "
                "(still arriving, cut short or corrupted); wait for the delivery to finish or re-deliver it"
            )
        if sha256 != entry.sha256:
            raise ManifestError(
                f"{prefix}/{name}: SHA-256 {sha256} differs from {entry.listed_in} ({entry.sha256}): the "
                "bytes changed after the producer listed them (corrupted in transfer or storage); re-deliver it"
            )
    unlisted = sorted(set(delivered) - set(entries))
    if unlisted:
        listing = ", ".join(p.name for p in manifests(folder))
        raise ManifestError(
            f"{prefix}/{unlisted[0]}: not listed in the folder's manifest ({listing}); a folder with a "
            "manifest must list every event file (deliver a late file with its own manifest-*.json)"
        )
    return len(entries)


def verify_deliveries(landing_dir: Path, folder_dates: Iterable[str | dt.date]) -> int:
    """Verify the delivery folders of these dates (those that exist); returns the files verified."""
    return sum(verify_folder(landing_dir / "events" / f"date={day}", landing_dir) for day in folder_dates)
