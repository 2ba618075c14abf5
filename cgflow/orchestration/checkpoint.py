"""Exports of a campaign while it runs: ``cgflow launch --campaign NAME --export-to DIR``
writes the campaign's ``dataset.npz`` and ``sets.json`` (the files of ``cgflow dataset
export``) at the start, again each time one more of its sets finishes, and once more
when the launch ends.

A long campaign run in chunks (a chunk per allotted stretch of machine time, each
exported and merged later) then keeps every finished set of a chunk on disk even when
the launcher, the job database or the machine is stopped before the chunk ends: at most
the sets under way are lost. Each export replaces the files atomically
(:func:`cgflow.stages.dataset.export_campaign`), so a stop while exporting leaves the
previous complete export.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cgflow.errors import InvalidInputError
from cgflow.orchestration.progress import CampaignProgress


class ExportCheckpoint:
    """Call :meth:`update` with each progress snapshot of a campaign; it exports when the
    number of finished sets (done, failed or unconverged) has grown since the last export,
    and once for the first snapshot.

    Parameters
    ----------
    export
        Writes the export and returns :func:`cgflow.stages.dataset.export_campaign`'s
        summary (``n_sets``, ``n_converged``); an :class:`InvalidInputError` (nothing
        converged yet) is said once, an ``OSError`` (the folder not writable, a full
        disk) each time, and both are retried at the next finished set: the campaign
        goes on.
    out_dir
        Where ``export`` writes (for the messages).
    report
        Where one line per export goes.
    """

    def __init__(self, export: Callable[[], dict[str, Any]], out_dir: str | Path,
                 report: Callable[[str], None] = print) -> None:
        self.export = export
        self.out_dir = Path(out_dir)
        self.report = report
        self.exported_at: int | None = None
        self.n_exports = 0
        self._said_not_yet = False

    def update(self, snap: CampaignProgress | None, *, force: bool = False) -> bool:
        """Export if a set finished since the last export (or ``force``: the launch
        ends, and Fireworks that ran after the last set finished may have added
        results); whether it exported."""
        if snap is None or (not force and self.exported_at is not None
                            and snap.n_finished <= self.exported_at):
            return False
        self.exported_at = snap.n_finished
        try:
            out = self.export()
        except InvalidInputError as exc:
            if not self._said_not_yet:
                self.report(f"export to {self.out_dir}: nothing to export yet ({exc}); "
                            "tried again when a set finishes")
                self._said_not_yet = True
            return False
        except OSError as exc:  # a full disk, a folder gone: said, the campaign goes on
            self.report(f"export to {self.out_dir} FAILED ({type(exc).__name__}: {exc}); "
                        "the previous export is kept, tried again when a set finishes")
            return False
        self.n_exports += 1
        self.report(f"exported {out['n_converged']} converged of {out['n_sets']} sets "
                    f"({snap.n_finished} of {snap.n_total} finished) to {self.out_dir}")
        return True


def campaign_export(store: Any, campaign: str, out_dir: str | Path,
                    preset: str | None = None) -> Callable[[], dict[str, Any]]:
    """The ``export`` of an :class:`ExportCheckpoint`: ``cgflow dataset export`` of
    ``campaign`` through ``store`` into ``out_dir``."""
    from cgflow.stages.dataset import export_campaign

    def export() -> dict[str, Any]:
        return export_campaign(store, campaign, out_dir, preset=preset)

    return export
