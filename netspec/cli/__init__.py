"""The `netspec` command line.

Exit codes, the same for every command:
    0  success: every spec valid, every image classified;
    1  a spec, weight file or image is invalid (each problem is printed as one located line);
    2  usage error: an unknown option, a missing argument, a path that does not exist;
    3  an internal error in netspec itself (please report it; --debug shows the traceback);
  130  interrupted with Ctrl-C.
A reader that goes away (`netspec run ... | head`) ends the command quietly with exit code 1.
Results go to stdout; problems and diagnostics to stderr (validate prints its findings to stdout,
since they are its result).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback

import click

from netspec import __version__
from netspec.errors import NetspecError

# Each command's module is imported when the command runs, so `netspec run` loads nothing of
# training, ONNX or pictures: the order here is the order of `netspec --help`.
COMMANDS = {
    "validate": "netspec.cli.validate:validate",
    "run": "netspec.cli.run:run",
    "summary": "netspec.cli.summary:summary",
    "train": "netspec.cli.train:train",
    "eval": "netspec.cli.eval:evaluate_command",
    "draw": "netspec.cli.draw:draw",
    "export": "netspec.cli.onnx:export",
    "import": "netspec.cli.onnx:import_command",
    "convert": "netspec.cli.convert:convert",
    "schema": "netspec.cli.schema:schema",
    "init": "netspec.cli.init:init",
    "upgrade": "netspec.cli.upgrade:upgrade",
}


SUMMARIES = {
    "validate": "Check specs (files, or every *.yaml/*.yml below folders).",
    "run": "Classify images (or rows of numbers) with a spec's network.",
    "summary": "Show a spec's layers, shapes, parameters and multiply-adds.",
    "train": "Learn a spec's weights from a folder of pictures or a .npz.",
    "eval": "Measure accuracy, precision, recall and the confusion matrix.",
    "draw": "Draw a spec's network, or one neuron's weights.",
    "export": "Write a spec's network as an ONNX model.",
    "import": "Write an ONNX model as a spec and its arrays.",
    "convert": "Write a PyTorch state dict (.pth) as .safetensors.",
    "schema": "Print the JSON Schema of the spec format.",
    "init": "Write a commented starter spec that validates as it is.",
    "upgrade": "Bring a spec to the current format version.",
}
"""What `netspec --help` says of each command, whole (click would cut the first sentence of each help)."""


class _Group(click.Group):
    """Loads commands on demand, and turns netspec's own errors into located one-line messages, in this one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # From SUMMARIES: whole sentences, and no command module imported to list them.
        with formatter.section("Commands"):
            formatter.write_dl([(name, SUMMARIES[name]) for name in COMMANDS])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except NetspecError as err:
            if ctx.obj["debug"]:
                raise
            from netspec.cli.options import shown_problems

            for line in shown_problems(err.problems):
                click.echo(line, err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("netspec: interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # The reader went away (`netspec run ... | head`): stop quietly, as other tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except OSError as err:
            if ctx.obj["debug"]:
                raise
            where = f": {err.filename}" if err.filename else ""
            click.echo(f"netspec: {err.strerror or err}{where}", err=True)
            ctx.exit(1)
        except Exception as err:  # noqa: BLE001 - the last line of defence against tracebacks
            if ctx.obj["debug"]:
                traceback.print_exc()
                ctx.exit(3)
            click.echo(
                f"netspec: internal error: {type(err).__name__}: {err}\n"
                "This is a bug in netspec; please report it with the command you ran (add --debug for the traceback).",
                err=True,
            )
            ctx.exit(3)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="netspec")
@click.option("--debug", is_flag=True, envvar="NETSPEC_DEBUG", help="Show Python tracebacks (for developing netspec).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Describe a neural network in a YAML file, check it, and run it."""
    ctx.obj = {"debug": debug}


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main(prog_name="netspec", standalone_mode=True) or 0)


__all__ = ["main", "entry"]
