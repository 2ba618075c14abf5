"""How far a campaign has come, from the database alone (``cgflow campaign status``).

Each parameter set is put in one stage: ``AA <step>`` while its all-atom Fireworks run,
``IBI iteration n`` during IBI, ``CG production``, ``friction trial n`` during the
friction calibration, ``done``, ``failed`` (a FIZZLED
Firework, with the reason FireWorks stored), ``unconverged`` (IBI stopped without
convergence; the reason comes from the stored potential) or ``waiting``. Running, queued
(READY/RESERVED) and failed Fireworks are listed, and the time spent is summed from the
launches (archived ones of reruns included; a running launch counts until now). Few
queries (the campaign's Fireworks, their launches in chunks, the potentials of its sets),
each launch query with a projection, so it stays fast for campaigns of hundreds of sets
(``benchmarks/campaign_status.py``). An active-learning campaign also lists its stored
rounds (:func:`format_round`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cgflow.orchestration.stage_names import (
    AA_STAGES,
    SPEC_FRICTION_TRIAL,
    SPEC_IBI_ITERATION,
    SPEC_STAGE,
    Stage,
)

_AA_ORDER = [s.value for s in AA_STAGES]
#: Most Fireworks listed per group (running, queued, failed) in the text report.
MAX_LISTED = 30


@dataclass
class SetStatus:
    """Stage of one parameter set."""

    param_id: str
    label: str
    stage: str
    detail: str = ""


@dataclass
class CampaignStatus:
    """Everything ``cgflow campaign status`` shows."""

    campaign: str
    sets: list[SetStatus]
    fw_states: Counter
    running: list[dict[str, Any]] = field(default_factory=list)
    queued: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    time_spent_s: float = 0.0
    #: the stored rounds of an active-learning campaign (ActiveRoundDoc), in order
    rounds: list[Any] = field(default_factory=list)

    def stage_counts(self) -> Counter:
        """Number of parameter sets per stage (IBI iterations folded together)."""
        return Counter("IBI" if s.stage.startswith("IBI") else
                       "friction" if s.stage.startswith("friction") else s.stage
                       for s in self.sets)


def _reason(launch: dict[str, Any] | None) -> str:
    if not launch:
        return "no launch recorded"
    exc = ((launch.get("action") or {}).get("stored_data") or {}).get("_exception") or {}
    trace = exc.get("_stacktrace") or ""
    lines = [line for line in trace.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else (launch.get("state_history") or [{}])[-1].get(
        "state", "unknown")


#: Launch ids per query: a long ``$in`` list is slow on the embedded server (it grew
#: roughly quadratically: 0.14 s for 382 ids, 1.9 s for 1530), chunks keep it linear.
_CHUNK = 250


def _find_launches(launchpad: Any, ids: list[int], projection: dict[str, int]) -> list[dict]:
    out: list[dict] = []
    for k in range(0, len(ids), _CHUNK):
        out.extend(launchpad.launches.find({"launch_id": {"$in": ids[k:k + _CHUNK]}},
                                           projection))
    return out


def _utc(t: Any) -> datetime:
    t = datetime.fromisoformat(t) if isinstance(t, str) else t
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def _launch_seconds(launch: dict[str, Any], running: bool = False) -> float:
    """Run time of a launch. Without ``runtime_secs`` (not finished): from its RUNNING
    entry until now when it is the live launch of a RUNNING Firework (``running``), else
    until that entry's last update (its last ping: a lost or archived run stops there)."""
    if launch.get("runtime_secs") is not None:
        return float(launch["runtime_secs"])
    entries = [h for h in launch.get("state_history") or [] if h.get("state") == "RUNNING"]
    if not entries or entries[-1].get("created_on") is None:
        return 0.0
    t0 = _utc(entries[-1]["created_on"])
    last = entries[-1].get("updated_on")
    t1 = datetime.now(UTC) if running or last is None else _utc(last)
    return max(0.0, (t1 - t0).total_seconds())


def campaign_status(launchpad: Any, store: Any, campaign: str) -> CampaignStatus:
    """Read the stage of every parameter set of ``campaign`` and the Fireworks' states."""
    fws = list(launchpad.fireworks.find(
        {"spec.campaign": campaign},
        {"fw_id": 1, "name": 1, "state": 1, "launches": 1, "archived_launches": 1,
         "spec.param_id": 1, "spec.label": 1, f"spec.{SPEC_STAGE}": 1,
         f"spec.{SPEC_IBI_ITERATION}": 1, f"spec.{SPEC_FRICTION_TRIAL}": 1}))
    # run times of every launch (reruns' archived ones too); details only where shown
    all_ids = [lid for f in fws
               for lid in (f.get("launches") or []) + (f.get("archived_launches") or [])]
    runtimes = {d["launch_id"]: d for d in _find_launches(
        launchpad, all_ids, {"launch_id": 1, "runtime_secs": 1, "state_history": 1})}
    shown = [f["launches"][-1] for f in fws
             if f["state"] in ("RUNNING", "FIZZLED") and f.get("launches")]
    live = {f["launches"][-1] for f in fws if f["state"] == "RUNNING" and f.get("launches")}
    launches = {d["launch_id"]: d for d in _find_launches(
        launchpad, shown, {"launch_id": 1, "action.stored_data._exception._stacktrace": 1,
                           "state_history": 1, "host": 1})}
    pids = sorted({f.get("spec", {}).get("param_id") for f in fws} - {None, ""})
    wf = launchpad.workflows.find_one({"metadata.cgflow_campaign": campaign},
                                      {"metadata.spec.preset": 1}) or {}
    preset = ((wf.get("metadata") or {}).get("spec") or {}).get("preset")
    potentials: dict[str, Any] = {}
    for p in store.potentials(param_ids=pids):  # this preset's, the campaign's own first
        if preset is not None and p.preset != preset:
            continue
        if p.param_id not in potentials or p.campaign == campaign:
            potentials[p.param_id] = p
    frictions: dict[str, Any] = {}
    if any(f.get("spec", {}).get(SPEC_STAGE) == Stage.CG_FRICTION for f in fws):
        for fdoc in store.frictions(param_ids=pids):
            if preset is None or fdoc.preset == preset:
                frictions[fdoc.param_id] = fdoc
    out_time = sum(_launch_seconds(d, d["launch_id"] in live) for d in runtimes.values())

    by_set: dict[str, list[dict]] = defaultdict(list)
    out = CampaignStatus(campaign=campaign, sets=[], fw_states=Counter(), time_spent_s=out_time)
    for f in fws:
        spec = f.get("spec", {})
        if spec.get(SPEC_STAGE) not in (Stage.TRAIN, Stage.ACTIVE_ROUND, Stage.TRAIN_INVERSE):
            by_set[spec.get("param_id", "?")].append(f)
        out.fw_states[f["state"]] += 1
        row = {"fw_id": f["fw_id"], "name": f.get("name", ""), "state": f["state"]}
        if f["state"] == "RUNNING":
            last = launches.get((f.get("launches") or [None])[-1]) or {}
            row["host"] = last.get("host", "")
            out.running.append(row)
        elif f["state"] in ("READY", "RESERVED"):
            out.queued.append(row)
        elif f["state"] == "FIZZLED":
            last = launches.get((f.get("launches") or [None])[-1])
            row["reason"] = _reason(last)
            out.failed.append(row)

    for pid, items in by_set.items():
        label = items[0].get("spec", {}).get("label", pid)
        out.sets.append(_set_status(pid, label, items, potentials.get(pid),
                                    frictions.get(pid)))
    out.sets.sort(key=lambda s: s.label)
    if any(f.get("spec", {}).get(SPEC_STAGE) == Stage.ACTIVE_ROUND for f in fws):
        out.rounds = store.active_rounds(campaign)
    return out


def format_round(doc: Any) -> str:
    """One line of an active campaign's round: ``round k: n sets, chosen by criterion,
    max std of alpha s`` (or why it stopped)."""
    std = (f", max std of alpha {doc.max_alpha_std:.3g}" if doc.max_alpha_std is not None
           else "")
    if doc.status == "stopped":
        return f"round {doc.round}: stopped ({doc.reason}){std}"
    crit = doc.selection.criterion if doc.selection is not None else "?"
    return (f"round {doc.round}: {len(doc.chosen)} set(s), chosen by {crit} from "
            f"{doc.n_candidates} candidates, trained on {len(doc.train_param_ids)} set(s) "
            f"({doc.n_train_alpha} with alpha){std}"
            + ("; last round" if doc.last else ""))


def _set_status(pid: str, label: str, items: list[dict], potential: Any,
                friction: Any = None) -> SetStatus:
    def stage(f):
        return f.get("spec", {}).get(SPEC_STAGE, "")

    fizzled = [f for f in items if f["state"] == "FIZZLED"]
    if fizzled:
        return SetStatus(pid, label, "failed", f"{stage(fizzled[0])} FIZZLED")
    active = [f for f in items if f["state"] in ("RUNNING", "RESERVED", "READY")]
    if not active:
        if potential is not None and not potential.converged:
            return SetStatus(pid, label, "unconverged", potential.reason)
        if all(f["state"] == "COMPLETED" for f in items):
            return SetStatus(pid, label, "done", _friction_detail(friction))
        held = Counter(f["state"] for f in items if f["state"] in ("PAUSED", "DEFUSED"))
        return SetStatus(pid, label, "waiting",
                         ", ".join(f"{n} {st}" for st, n in sorted(held.items())))
    f = max(active, key=lambda f: f["state"] == "RUNNING")
    st = stage(f)
    if st in _AA_ORDER:
        return SetStatus(pid, label, f"AA {st[3:]}", f["state"])
    if st == Stage.CG_IBI:
        n = f.get("spec", {}).get(SPEC_IBI_ITERATION, 0)
        return SetStatus(pid, label, f"IBI iteration {n}", f["state"])
    if st == Stage.CG_PRODUCTION:
        return SetStatus(pid, label, "CG production", f["state"])
    if st == Stage.CG_FRICTION:
        n = f.get("spec", {}).get(SPEC_FRICTION_TRIAL, 1)
        return SetStatus(pid, label, f"friction trial {n}", f["state"])
    if st == Stage.SYNTHETIC_BATCH:
        return SetStatus(pid, label, "synthetic pairs", f["state"])
    return SetStatus(pid, label, st or "other", f["state"])


def _friction_detail(friction: Any) -> str:
    """What a finished set's friction calibration gave ('' without one)."""
    if friction is None or friction.status == "running":
        return ""
    if friction.converged and friction.gamma_per_ps is not None:
        d = friction.d_cg_nm2_ps
        dev = (f", D_CG/D_AA - 1 = {100 * (d.mean / friction.d_aa_nm2_ps.mean - 1):+.0f} %"
               if d is not None and friction.d_aa_nm2_ps is not None else "")
        return (f"friction gamma = {friction.gamma_per_ps:.3g} 1/ps after "
                f"{friction.n_trials} trial(s){dev}")
    return f"friction unconverged: {friction.reason}"


def format_status(s: CampaignStatus) -> str:
    """Plain-text report of :func:`campaign_status`."""
    lines = [f"campaign {s.campaign}: {len(s.sets)} parameter sets, "
             f"{sum(s.fw_states.values())} Fireworks "
             f"({', '.join(f'{k} {v}' for k, v in sorted(s.fw_states.items()))}), "
             f"time spent {s.time_spent_s / 3600:.2f} h"]
    lines.append("sets by stage: " + ", ".join(f"{k} {v}" for k, v in
                                               sorted(s.stage_counts().items())))
    lines.append("")
    for st in s.sets:
        lines.append(f"  {st.label:18s} {st.stage:20s} {st.detail}")
    if s.rounds:
        lines.append("")
        lines.append("active-learning rounds:")
        lines += [f"  {format_round(r)}" for r in s.rounds]
    for title, rows in (("running", s.running), ("queued", s.queued), ("failed", s.failed)):
        if rows:
            lines.append("")
            lines.append(f"{title}:")
            for r in rows[:MAX_LISTED]:
                extra = r.get("reason") or r.get("host") or ""
                lines.append(f"  fw {r['fw_id']:>5} {r['name']:45s} {extra}")
            if len(rows) > MAX_LISTED:
                lines.append(f"  ... and {len(rows) - MAX_LISTED} more {title}")
    return "\n".join(lines)
