import subprocess
import sys

import pytest

import qtn


@pytest.mark.parametrize("name", qtn.__all__)
def test_every_public_name_imports(name):
    assert getattr(qtn, name) is not None


def test_unknown_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        qtn.nope  # noqa: B018


def test_import_does_no_heavy_work():
    code = (
        "import sys, qtn; heavy = [m for m in ('jax', 'quimb', 'qiskit', 'sklearn') "
        "if m in sys.modules]; print(heavy); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_does_not_enable_x64():
    import jax

    import qtn.features  # noqa: F401

    assert not jax.config.jax_enable_x64


def test_errors_are_builtin_subclasses():
    assert issubclass(qtn.DataNotFoundError, FileNotFoundError)
    assert issubclass(qtn.DataIntegrityError, ValueError)
    assert issubclass(qtn.DataIntegrityError, qtn.QtnError)
