"""Break the code on purpose and confirm the tests notice: each mutation must turn them red.

Each mutation is applied to a temporary copy of the repository (the tracked and untracked,
not ignored, files; never the real tree), the tests that guard it run there against the
copy (``PYTHONPATH`` points at it, ahead of the editable install), and the check passes only
when at least one of the *expected* tests fails. First the unmutated copy must be green on
the same tests, so that a red run is the mutation's doing.

    python scripts/mutation_check.py            # all mutations (several minutes on 2 cores)
    python scripts/mutation_check.py --list
    python scripts/mutation_check.py penalty-weight card-scores-swapped

A mutation whose target text is no longer in the code is reported as NOT APPLIED (the code
moved: update the mutation); it counts as a failure of this script, never as a pass.
Exit status 0 only when every selected mutation was applied and went red.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Mutation:
    """One deliberate break.

    ``edits`` are (file, regex, replacement) applied to the copy, each regex matching
    exactly once; ``apply`` is a function of the copy's root for breaks that are not a text
    edit. ``tests`` are pytest arguments; ``expect`` are substrings of test ids of which at
    least one must fail.
    """

    name: str
    what: str
    tests: list[str]
    expect: list[str]
    edits: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    apply: Callable[[Path], None] | None = None


def _swap_card_scores(root: Path) -> None:
    """Swap the reproducibility scores of the two shipped cards, then re-register their hashes
    so that the integrity check passes and only the score comparison can catch it."""
    data = root / "xstochsr" / "data"
    a, b = json.loads((data / "rain-x8.json").read_text()), \
        json.loads((data / "qg-wind-x8.json").read_text())
    ra, rb = a["scores"]["reproducibility"], b["scores"]["reproducibility"]
    ra["model"], rb["model"] = rb["model"], ra["model"]
    for name, card in (("rain-x8", a), ("qg-wind-x8", b)):
        (data / f"{name}.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    _reregister(root, ["rain-x8.json", "qg-wind-x8.json"])


def _swap_held_out_model_and_bilinear(root: Path) -> None:
    """Swap the model's and bilinear's held-out rows on the rain card (a flattering card)."""
    data = root / "xstochsr" / "data"
    card = json.loads((data / "rain-x8.json").read_text())
    for table in card["scores"]["held_out"].values():
        table["model"], table["bilinear"] = table["bilinear"], table["model"]
    (data / "rain-x8.json").write_text(json.dumps(card, indent=2, sort_keys=True))
    _reregister(root, ["rain-x8.json"])


def _reregister(root: Path, names: list[str]) -> None:
    for reg in (root / "data_registry.txt", root / "xstochsr" / "data" / "registry.txt"):
        text = reg.read_text()
        for name in names:
            digest = hashlib.sha256((root / "xstochsr" / "data" / name).read_bytes()).hexdigest()
            text, n = re.subn(rf"(xstochsr/data/{re.escape(name)} sha256:)[0-9a-f]{{64}}",
                              rf"\g<1>{digest}", text)
            if n != 1:
                raise LookupError(f"{name} is not registered once in {reg.name}")
        reg.write_text(text)


OBJ = "xstochsr/training/losses/adversarial.py"  # WGANGP; training/objective.py re-exports
CFG = "xstochsr/training/config.py"
LOOP = "xstochsr/training/loop.py"
CRITIC = "xstochsr/models/critic.py"
T_OBJ = "tests/training/test_objective.py"
T_CFG = "tests/training/test_config.py"
T_CRITIC = "tests/models/test_critic.py"
T_REG = "tests/models/test_registry.py"
T_TRAIN = "tests/training/test_train.py"
CRPS = "xstochsr/training/losses/crps.py"
CONSTR = "xstochsr/models/constraints.py"
T_LOSSES = "tests/training/test_losses.py"
T_CONSTR = "tests/models/test_constraints.py"
LOSSES = "xstochsr/training/losses/__init__.py"
T_BAL = "tests/training/test_term_balance.py"
GEN = "xstochsr/models/generator.py"
T_FINE = "tests/models/test_fine_noise.py"

MUTATIONS = [
    Mutation("penalty-weight", "gradient-penalty weight halved inside WGANGP",
             [T_OBJ], ["penalty_and_wasserstein_by_hand"],
             edits=[(OBJ, r"self\.gp_weight = float\(gp_weight\)",
                     "self.gp_weight = 0.5 * float(gp_weight)")]),
    Mutation("penalty-dropped", "gradient-penalty term dropped from the critic loss",
             [T_OBJ], ["penalty_and_wasserstein_by_hand", "per_sample_at_the_interpolates"],
             edits=[(OBJ, r"loss = -wdist \+ self\.gp_weight \* gp", "loss = -wdist")]),
    Mutation("wasserstein-dropped", "Wasserstein term dropped from the critic loss",
             [T_OBJ], ["penalty_and_wasserstein_by_hand"],
             edits=[(OBJ, r"loss = -wdist \+ self\.gp_weight \* gp",
                     "loss = self.gp_weight * gp")]),
    Mutation("penalty-at-real", "penalty taken at the real sequence, not the interpolates",
             [T_OBJ], ["interpolates_lie_between"],
             edits=[(OBJ, r"interp = \(e \* real \+ \(1 - e\) \* fake\)",
                     "interp = (real + 0 * e)")]),
    Mutation("mask-ignored", "critic loss ignores the mask of missing values",
             [T_OBJ], ["mask_by_hand", "masked_pixels_invisible"],
             edits=[(OBJ, r"fake = apply_mask\(fake\.detach\(\), real, mask\)",
                     "fake = fake.detach()")]),
    Mutation("critic-layer-frozen", "one critic layer frozen (requires_grad False)",
             [T_CRITIC], ["every_trainable_tensor"],
             edits=[(CRITIC, r"(self\.fine_gru = ConvGRUCell\(w, w, sn=sn\))",
                     r"\1\n        self.fine_gru.requires_grad_(False)")]),
    Mutation("critic-path-detached", "the critic's coarse path cut from the gradient",
             [T_CRITIC], ["every_trainable_tensor", "penalty_reaches_every_weight"],
             edits=[(CRITIC, r"xc = self\.coarse_path\(coarse\.reshape\(b \* t, cc, hh, ww\)\)",
                     "xc = self.coarse_path(coarse.reshape(b * t, cc, hh, ww)).detach()")]),
    Mutation("critic-coarse-not-widening", "the critic's coarse path 256 wide throughout",
             [T_CRITIC], ["reference_parameter_count", "paper_preset_builds"],
             edits=[(CRITIC, r"self\.coarse_widths = _widening\(self\.width, m\)",
                     "self.coarse_widths = [self.width] * m")]),
    Mutation("generator-frozen", "generator optimiser built with learning rate 0",
             [T_TRAIN + "::test_training_learns_a_known_mapping_mse", T_CFG],
             ["learns_a_known_mapping", "reaches_the_optimisers", "not_swapped"],
             edits=[(LOOP, r'mods = \[\("opt_g", self\.G, cfg\.lr_generator\)\]',
                     'mods = [("opt_g", self.G, 0.0 * cfg.lr_generator)]')]),
    Mutation("preset-critic-steps", "paper preset with 3 critic steps instead of 5",
             [T_CFG], ["paper_preset"],
             edits=[(CFG, r"critic_steps=5, steps=25000", "critic_steps=3, steps=25000")]),
    Mutation("preset-sgd-switch", "paper preset's SGD phase 3,000 steps instead of 3,125",
             [T_CFG], ["switches_to_sgd"],
             edits=[(CFG, r"sgd_steps=3125", "sgd_steps=3000")]),
    Mutation("preset-lr", "default critic learning rate 2e-4 instead of the paper's 1e-4",
             [T_CFG], ["paper_preset_reaches_the_optimisers", "papers_numbers"],
             edits=[(CFG, r"lr_critic: float = 1e-4", "lr_critic: float = 2e-4")]),
    Mutation("preset-betas", "default Adam betas (0.9, 0.999) instead of (0.5, 0.9)",
             [T_CFG], ["reaches_the_optimisers"],
             edits=[(CFG, r"betas: tuple\[float, float\] = \(0\.5, 0\.9\)",
                     "betas: tuple[float, float] = (0.9, 0.999)")]),
    Mutation("loop-one-critic-step", "the loop makes one critic update whatever the preset",
             [T_CFG], ["reaches_the_optimisers", "not_swapped"],
             edits=[(LOOP, r"for _ in range\(self\.cfg\.critic_steps\):", "for _ in range(1):")]),
    Mutation("crps-spread-dropped", "fair CRPS without its spread term (plain mean error)",
             [T_LOSSES], ["fair_crps_of_a_tiny_ensemble_by_hand", "prefers_the_right_spread"],
             edits=[(CRPS, r"return skill - spread / \(k \* \(k - 1\)\)", "return skill")]),
    Mutation("constraint-bypassed", "multiplicative constraint layer returns raw logits",
             [T_CONSTR], ["conserves_in_physical_units", "needs_no_rescaling"],
             edits=[(CONSTR, r"return multiplicative\(z, coarse, factor\)", "return z")]),
    Mutation("adaptive-ratio-inverted", "adaptive adversarial weight uses |g_adv| / |g_other|",
             [T_BAL], ["closed_form_ratio", "invariant_to_the_critic_scale"],
             edits=[(LOSSES, r"ratio = \(g_other / \(g_adv \+ ADAPTIVE_EPS\)\)",
                     "ratio = (g_adv / (g_other + ADAPTIVE_EPS))")]),
    Mutation("fine-noise-not-shuffled", "fine noise maps cut from channels without pixel_shuffle "
             "(each fine pixel no longer tied to its coarse cell)",
             [T_FINE], ["acts_only_near_its_coarse_cell"],
             edits=[(GEN, r"fine\.append\(F\.pixel_shuffle\(noise\[:, i : i \+ k\], 2\*\*s\)\)",
                     "fine.append(F.interpolate(noise[:, i : i + k : 4**s], "
                     "scale_factor=2**s))")]),
    Mutation("card-scores-swapped", "reproducibility scores of the two cards swapped",
             [T_REG, "-k", "recomputed"], ["recomputed_from_the_shipped_weights"],
             apply=_swap_card_scores),
    Mutation("card-held-out-swapped", "rain card's held-out rows of model and bilinear swapped",
             [T_REG, "-k", "gate"], ["passed_gate"], apply=_swap_held_out_model_and_bilinear),
]

# Static fine-resolution predictors (issue 13): each break must turn its tests red.
T_STATIC_G = "tests/models/test_static_generator.py"
T_STATIC_T = "tests/training/test_static_training.py"
MUTATIONS += [
    Mutation("static-not-in-decoder", "static fields no longer added after the upsampling stages",
             [T_STATIC_G], ["changes_the_output_and_gets_gradients"],
             edits=[(GEN, r"y = y \+ self\.static_inject\[s\]\(static\[s\]\)", "y = y")]),
    Mutation("static-not-rotated", "training patches rotate the target but not its static field",
             [T_STATIC_T, "-k", "window"], ["target_window_with_the_same_symmetries"],
             edits=[("xstochsr/training/data.py",
                     r"st\[k\] = np\.rot90\(st\[k\], rot, axes=\(-2, -1\)\)", "pass")]),
    Mutation("static-units-ignored", "static fields used in their own units (feet as metres)",
             ["tests/test_static.py", "-k", "feet"], ["feet_are_converted_to_metres"],
             edits=[("xstochsr/static.py", r"if not units:\n        return values",
                     "return values")]),
    Mutation("static-critic-blind", "the critic no longer sees the static fields",
             [T_STATIC_T, "-k", "critic"], ["critic_sees_the_static_fields"],
             edits=[(LOOP, r"if critic is None or static is None:", "if True:")]),
]


def _files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode()
    return [f for f in out.split("\0") if f and (REPO / f).is_file()]


def _copy(dest: Path, files: list[str]) -> None:
    for f in files:
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / f, dest / f)


def _mutate(root: Path, m: Mutation) -> str | None:
    """Apply ``m`` under ``root``; return why it could not be applied, or None."""
    for rel, pattern, repl in m.edits:
        path = root / rel
        text = path.read_text()
        new, n = re.subn(pattern, repl, text)
        if n != 1:
            return f"{rel}: pattern {pattern!r} found {n} times (expected once)"
        path.write_text(new)
    if m.apply is not None:
        try:
            m.apply(root)
        except (LookupError, OSError, ValueError) as err:
            return str(err)
    return None


def _pytest(root: Path, args: list[str]) -> tuple[int, list[str], str]:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-rf", "--no-header", *args], cwd=root, env=env,
                          capture_output=True, text=True)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", proc.stdout, flags=re.M)
    return proc.returncode, failed, proc.stdout[-3000:]


def _imports_copy(root: Path) -> bool:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-c", "import xstochsr; print(xstochsr.__file__)"],
                         cwd=root, env=env, capture_output=True, text=True).stdout.strip()
    return Path(out).resolve().is_relative_to(root.resolve())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("names", nargs="*", help="mutations to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the mutations and exit")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the unmutated run (faster; a red result is then less telling)")
    args = p.parse_args(argv)
    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:<24} {m.what}")
        return 0
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown or not chosen:
        print(f"unknown mutation(s) {sorted(unknown)}; see --list", file=sys.stderr)
        return 2

    files = _files()
    results = []
    with tempfile.TemporaryDirectory(prefix="xstochsr-mutants-") as tmp:
        clean = Path(tmp) / "clean"
        _copy(clean, files)
        if not _imports_copy(clean):
            print("the copy's xstochsr is not the one imported: refusing to run", file=sys.stderr)
            return 2
        if not args.no_baseline:
            targets = sorted({a for m in chosen for a in m.tests if a != "-k"
                              and a.startswith("tests/")})
            t0 = time.perf_counter()
            rc, failed, tail = _pytest(clean, targets)
            print(f"baseline (unmutated copy) on {len(targets)} test targets: "
                  f"{'green' if rc == 0 else 'RED'} ({time.perf_counter() - t0:.0f} s)",
                  flush=True)
            if rc != 0:
                print(tail)
                print("the unmutated tests fail: fix them before judging mutations.")
                return 1
        for m in chosen:
            root = Path(tmp) / m.name
            shutil.copytree(clean, root)
            why = _mutate(root, m)
            if why:
                results.append((m, "NOT APPLIED", why))
            else:
                t0 = time.perf_counter()
                rc, failed, tail = _pytest(root, m.tests)
                hit = sorted(f for f in failed if any(e in f for e in m.expect))
                if rc != 0 and hit:
                    names = dict.fromkeys(x.split("::", 1)[-1].split("[")[0] for x in hit)
                    verdict, detail = "RED (caught)", ", ".join(names)
                elif rc != 0:
                    verdict, detail = "RED (other tests only)", ", ".join(failed) or tail[-300:]
                else:
                    verdict, detail = "GREEN (missed!)", "no test failed"
                detail += f"  [{time.perf_counter() - t0:.0f} s]"
                results.append((m, verdict, detail))
            shutil.rmtree(root, ignore_errors=True)
            print(f"{m.name:<24} {results[-1][1]:<16} {results[-1][2]}", flush=True)

    ok = all(v == "RED (caught)" for _, v, _ in results)
    print(f"\n{sum(v == 'RED (caught)' for _, v, _ in results)}/{len(results)} mutations "
          f"caught by the tests meant to catch them" + ("" if ok else "; see above"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
