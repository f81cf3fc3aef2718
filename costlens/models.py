"""Turn what the user typed into a model: a zoo name, or ``pkg.module:attribute``.

Importing the user's module and calling their factory runs their code, which may do
anything: raise, call ``sys.exit``, raise a ``BaseException`` of its own. All of it is
contained here as a one-line ``ModelError`` (exit 2), so a budget can never pass
because user code ended the process; only ``KeyboardInterrupt`` (Ctrl-C) goes through.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from torch import nn

from costlens.errors import CostlensError, ModelError, UnknownModelError
from costlens.zoo import registry
from costlens.zoo.registry import NamedModel


def is_import_path(spec: str) -> bool:
    """``pkg.module:factory`` names a user's model; everything else is a zoo name."""
    return ":" in spec


def resolve(spec: str) -> NamedModel:
    """The model ``spec`` names; unknown names and failing imports raise one-line errors."""
    if not is_import_path(spec):
        return registry.entry(spec)
    return NamedModel(spec, _user_builder(spec))


def first_line(error: BaseException) -> str:
    """The first line of an exception's message, or its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _HardExit(BaseException):
    """``os._exit(code)`` or ``os.abort()`` called by user code, turned into an exception."""

    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


_REAL_EXIT, _REAL_ABORT = os._exit, os.abort
_inside_user_code = 0  # how many user_code blocks are running (they nest)
_HARD_EXITS_CONTAINED = [False]  # set by ``contain_hard_exits_in_this_process``: the command line's only


def contain_hard_exits_in_this_process() -> None:
    """From now on, ``os._exit`` and ``os.abort`` called by user code inside ``user_code`` raise
    instead of ending the process. The command line turns it on for its own process; a library
    call leaves its host's ``os`` module alone."""
    _HARD_EXITS_CONTAINED[0] = True


def _exit_instead(status: int) -> NoReturn:
    if _inside_user_code:
        raise _HardExit(f"os._exit({status!r})")
    _REAL_EXIT(status)


def _abort_instead() -> NoReturn:
    if _inside_user_code:
        raise _HardExit("os.abort()")
    _REAL_ABORT()


def ended(error: BaseException) -> str:
    """How user code ended: 'called sys.exit(0)', 'called os._exit(3)' or 'raised Boom: boom'."""
    if isinstance(error, SystemExit):
        return f"called sys.exit({error.code!r})"
    if isinstance(error, _HardExit):
        return f"called {error.call}"
    return f"raised {type(error).__name__}: {first_line(error)}"


@contextmanager
def user_code(what: str) -> Iterator[None]:
    """Run user code; a ``SystemExit`` or other ``BaseException`` from it becomes a ``ModelError``.

    In the command line's process (``contain_hard_exits_in_this_process``), ``os._exit`` and
    ``os.abort``, which end the process without an exception, raise one while user code runs
    (outside it they are the real ones again, even where user code kept a reference to them).
    ``Exception`` passes through (callers word their own message
    for it), and so does ``KeyboardInterrupt``: Ctrl-C stays Ctrl-C (exit 130).
    """
    global _inside_user_code
    if _HARD_EXITS_CONTAINED[0]:
        os._exit, os.abort = _exit_instead, _abort_instead
    _inside_user_code += 1
    try:
        yield
    except (Exception, KeyboardInterrupt):
        raise
    except BaseException as error:  # SystemExit, GeneratorExit, os._exit, a user's BaseException subclass
        raise ModelError(f"{what} {ended(error)}; user code cannot end a costlens run") from error
    finally:
        _inside_user_code -= 1
        if not _inside_user_code and _HARD_EXITS_CONTAINED[0]:
            os._exit, os.abort = _REAL_EXIT, _REAL_ABORT


@contextmanager
def contained(what: str, failed: str) -> Iterator[None]:
    """``user_code``, and an ``Exception`` from the block too becomes a one-line ``ModelError``: for
    costlens's own steps that run user code deep inside (timing a forward, a training step).
    It says where the exception was raised when that is outside torch and costlens (the model's
    file and line): then ``what`` raised it; else ``failed``, the step, names no culprit.
    Costlens's own errors, ``RecursionError`` (callers word it) and Ctrl-C pass through."""
    try:
        with user_code(what):
            yield
    except (CostlensError, RecursionError, KeyboardInterrupt):
        raise
    except Exception as error:
        at = raised_at(error)
        if at is not None:
            raise ModelError(f"{what} {ended(error)} ({at})") from error
        raise ModelError(f"{failed}: {type(error).__name__}: {first_line(error)}") from error


def raised_at(error: BaseException) -> str | None:
    """'model.py:14': the innermost frame of ``error``'s traceback outside torch, costlens (its zoo
    aside: those are models) and Python's standard library; None when every frame is theirs."""
    import sysconfig
    import traceback

    import torch

    import costlens

    theirs = tuple(os.path.join(os.path.realpath(os.path.dirname(module.__file__ or "")), "") for module in (torch, costlens))
    stdlib = os.path.join(os.path.realpath(sysconfig.get_paths()["stdlib"]), "")
    zoo = os.path.join(theirs[1], "zoo", "")
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        path = os.path.realpath(frame.filename)
        if path.startswith(zoo) or not (path.startswith(theirs) or path.startswith(stdlib) or frame.filename.startswith("<")):
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return None


def _importable_cwd() -> None:
    """Let ``pkg.module`` be found in the current directory, after the installed packages,
    so a stray ``pandas.py`` there cannot shadow a library costlens or the model imports."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)


def _user_builder(spec: str) -> Callable[[], nn.Module]:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UnknownModelError(f"'{spec}' is not an import path: write package.module:factory")
    _importable_cwd()
    try:
        with user_code(f"importing '{module_name}'"):
            module = importlib.import_module(module_name)
    except CostlensError:
        raise
    except Exception as error:  # an import can raise anything
        raise ModelError(f"cannot import '{module_name}': {type(error).__name__}: {first_line(error)}") from error
    target: object = module
    for part in attribute.split("."):
        try:
            with user_code(f"looking up '{attribute}' in '{module_name}'"):
                target = getattr(target, part)
        except AttributeError:
            raise ModelError(f"module '{module_name}' has no attribute '{attribute}'{_shadowed(module)}") from None
        except CostlensError:
            raise
        except Exception as error:  # a module __getattr__ is user code too
            raise ModelError(f"looking up '{attribute}' in '{module_name}' {ended(error)}") from error
    return lambda **options: _instantiate(spec, target, **options)


def _shadowed(module: object) -> str:
    """A hint when a file of the current directory lost to an installed module of the same name."""
    name = getattr(module, "__name__", "")
    found = getattr(module, "__file__", None)
    local = os.path.join(os.getcwd(), *name.split(".")) + ".py"
    if found and os.path.exists(local) and os.path.realpath(found) != os.path.realpath(local):
        return f" (it was imported from {found}: installed packages come before ./{os.path.basename(local)}; rename it)"
    return ""


def _instantiate(spec: str, target: object, **options: object) -> nn.Module:
    """The model ``target`` is, or builds when called with ``options`` (a sweep's ``width=``)."""
    if isinstance(target, nn.Module) and not options:
        return target
    if not callable(target) or isinstance(target, nn.Module):
        raise ModelError(f"'{spec}' is {'an nn.Module, not a factory' if options else 'neither an nn.Module nor a factory'}")
    try:
        with user_code(f"the factory '{spec}'"):
            model = target(**options)
    except CostlensError:
        raise
    except Exception as error:  # the user's factory can raise anything
        raise ModelError(f"'{spec}' failed to build the model: {type(error).__name__}: {first_line(error)}") from error
    if not isinstance(model, nn.Module):
        raise ModelError(f"'{spec}' returned {type(model).__name__}, not an nn.Module")
    return model
