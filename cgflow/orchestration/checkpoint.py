"""Exports of a campaign while it runs: ``cgflow launch --campaign NAME --export-to DIR``
writes the campaign's ``dataset.npz`` and ``sets.json`` (the files of ``cgflow dataset
export``) at the start, again each time one more of its sets finishes, and once more
when the launch ends.

A long campaign run in chunks (a chunk per allotted stretch of machine time, each
exported and merged later) then keeps every finished set of a chunk on disk even when
the launcher, the job database or the machine is stopped before the chunk ends: at most
the sets under way are lost. Each file of an export is written beside itself, flushed
and moved into place (:func:`cgflow.stages.dataset.export_campaign`), so a stop while
exporting leaves complete files (a stop between the two moves: a new ``dataset.npz``
beside the previous ``sets.json``, which a merge refuses by its hash until the next
export). The export is of the campaign's CG preset unless another is given.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cgflow.orchestration.progress import CampaignProgress


class ExportCheckpoint:
    """Call :meth:`update` with each progress snapshot of a campaign; it exports when the
    finished sets (done, failed or unconverged, each with its stage) differ from those of
    the last export, and once for the first snapshot.

    A set that finished, was rerun and finished again counts as a change, so its new
    result is exported too.

    Parameters
    ----------
    export
        Writes the export and returns :func:`cgflow.stages.dataset.export_campaign`'s
        summary (``n_sets``, ``n_converged``).
    out_dir
        Where ``export`` writes (for the messages).
    report
        Where one line per export (or failed export) goes.

    Notes
    -----
    What an export may raise:

    - :class:`~cgflow.stages.dataset.NothingToExportError` (no converged set yet): said
      once, tried again at the next change;
    - ``pymongo.errors.ConnectionFailure`` (the job database went away): propagates, the
      state unchanged, so the launcher's retry of the update exports again;
    - anything else (a full disk, a malformed stored document): said each time, with
      the previous export kept; tried again at the next change. The campaign goes on.
    """

    def __init__(self, export: Callable[[], dict[str, Any]], out_dir: str | Path,
                 report: Callable[[str], None] = print) -> None:
        self.export = export
        self.out_dir = Path(out_dir)
        self.report = report
        self.exported: frozenset[tuple[str, str]] | None = None
        self.n_exports = 0
        self._said_not_yet = False

    def update(self, snap: CampaignProgress | None, *, force: bool = False) -> bool:
        """Export if the finished sets changed since the last export.

        Parameters
        ----------
        snap
            The campaign's progress now (None: the database did not answer; nothing is
            done).
        force
            Export even if nothing changed (the launch ends, and Fireworks that ran
            after the last set finished may have added results).

        Returns
        -------
        bool
            Whether an export was written.
        """
        if snap is None:
            return False
        finished = frozenset((s.param_id, s.stage) for s in snap.sets if s.finished)
        if not force and finished == self.exported:
            return False
        from pymongo.errors import ConnectionFailure

        from cgflow.stages.dataset import NothingToExportError

        try:
            out = self.export()
        except ConnectionFailure:
            raise  # the caller waits for the database and calls again
        except NothingToExportError as exc:
            self.exported = finished
            if not self._said_not_yet:
                self.report(f"export to {self.out_dir}: nothing to export yet ({exc}); "
                            "tried again when a set finishes")
                self._said_not_yet = True
            return False
        except Exception as exc:  # said, not swallowed: the campaign goes on
            self.exported = finished
            self.report(f"export to {self.out_dir} FAILED ({type(exc).__name__}: {exc}); "
                        "the previous export is kept, tried again when a set finishes")
            return False
        self.exported = finished
        self.n_exports += 1
        self.report(f"exported {out['n_converged']} converged of {out['n_sets']} sets "
                    f"({snap.n_finished} of {snap.n_total} finished) to {self.out_dir}")
        return True


def campaign_export(store: Any, campaign: str, out_dir: str | Path,
                    preset: str | None = None) -> Callable[[], dict[str, Any]]:
    """The ``export`` of an :class:`ExportCheckpoint`.

    Parameters
    ----------
    store
        The campaign's :class:`cgflow.db.store.Store`.
    campaign, out_dir, preset
        As ``cgflow dataset export CAMPAIGN -o OUT_DIR --preset PRESET``.

    Returns
    -------
    callable
        Exports when called and returns :func:`cgflow.stages.dataset.export_campaign`'s
        summary.
    """
    from cgflow.stages.dataset import export_campaign

    def export() -> dict[str, Any]:
        return export_campaign(store, campaign, out_dir, preset=preset)

    return export
