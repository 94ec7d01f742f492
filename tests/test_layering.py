"""The layering rules of docs/architecture.md, checked by reading every module's imports.

Imports inside functions count as much as those at the top of a file.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xferlab"


def _module_name(path: pathlib.Path) -> str:
  parts = path.relative_to(ROOT).with_suffix("").parts
  return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> list[tuple[str, str, int]]:
  """``(module imported, name taken from it or '', line)`` for every import in a file."""
  tree = ast.parse(path.read_text(), filename=str(path))
  found = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      found += [(alias.name, "", node.lineno) for alias in node.names]
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      found += [(node.module, alias.name, node.lineno) for alias in node.names]
  return found


def _python_files(*folders: str) -> list[pathlib.Path]:
  files = []
  for folder in folders:
    base = ROOT / folder
    files += sorted(base.rglob("*.py")) if base.is_dir() else [base]
  return files


def _targets(path):
  """Every xferlab / benchmarks / experiments module a file imports, with the line."""
  out = []
  for module, name, line in _imports(path):
    for target in (module, f"{module}.{name}" if name else None):
      if target and target.split(".")[0] in ("xferlab", "benchmarks", "experiments"):
        out.append((target, line))
  return out


def _in(module: str, *packages: str) -> bool:
  return any(module == p or module.startswith(p + ".") for p in packages)


# (modules the rule applies to, modules they must never import, why)
RULES = [
    (("xferlab.models",), ("xferlab.data", "xferlab.train", "xferlab.checkpoint",
                           "xferlab.tasks", "xferlab.transfer", "xferlab.launch"),
     "models know arrays, not data, training or checkpoints"),
    (("xferlab.data",), ("xferlab.models", "xferlab.train", "xferlab.tasks",
                         "xferlab.launch"),
     "data knows text and ids, not models or training"),
    (("xferlab",), ("experiments", "benchmarks"),
     "the library never imports experiments or benchmarks"),
    (("xferlab.checkpoint",), ("xferlab.data",),
     "checkpoint is orbax I/O only and knows no tokenizer"),
    (("xferlab.train", "xferlab.callbacks", "xferlab.workdir", "xferlab.tasks",
      "xferlab.transfer", "xferlab.optim", "xferlab.privacy"), ("xferlab.launch",
                                                                "xferlab.studies"),
     "training never imports an entry point"),
]


@pytest.mark.parametrize("owners,forbidden,why", RULES, ids=[r[2] for r in RULES])
def test_a_layer_never_imports_what_is_above_it(owners, forbidden, why):
  broken = []
  for path in _python_files("xferlab"):
    module = _module_name(path)
    if not _in(module, *owners):
      continue
    for target, line in _targets(path):
      if _in(target, *forbidden):
        broken.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
  assert not broken, f"{why}:\n" + "\n".join(broken)


def _private_uses(path: pathlib.Path) -> list[str]:
  """Private names (``_x``) of project modules that ``path`` takes: ``from m import _x``, or
  ``alias._x`` where ``alias`` names an imported project module."""
  tree = ast.parse(path.read_text(), filename=str(path))
  own_package = _module_name(path).split(".")[0]
  aliases, uses = {}, []
  for node in ast.walk(tree):
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
      package = node.module.split(".")[0]
      if package not in ("xferlab", "benchmarks"):
        continue
      for alias in node.names:
        if alias.name.startswith("_") and not alias.name.startswith("__"):
          if not (package == "benchmarks" and own_package == "benchmarks"):
            uses.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}")
        aliases[alias.asname or alias.name] = package
    elif isinstance(node, ast.Import):
      for alias in node.names:
        if alias.name.split(".")[0] in ("xferlab", "benchmarks"):
          aliases[alias.asname or alias.name.split(".")[0]] = alias.name.split(".")[0]
  for node in ast.walk(tree):
    if (isinstance(node, ast.Attribute) and node.attr.startswith("_")
        and not node.attr.startswith("__") and isinstance(node.value, ast.Name)
        and node.value.id in aliases):
      if not (aliases[node.value.id] == "benchmarks" and own_package == "benchmarks"):
        uses.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}")
  return uses


def test_no_module_uses_a_private_name_of_another():
  uses = []
  for path in _python_files("xferlab", "benchmarks", "experiments", "tests", "launch.py"):
    uses += _private_uses(path)
  assert not uses, "private names used across modules:\n" + "\n".join(uses)


def test_the_checks_see_a_violation(tmp_path, monkeypatch):
  """The readers above find what they look for (so a green run means something)."""
  bad = PACKAGE / "models" / "_layering_probe.py"
  monkeypatch.setattr(pathlib.Path, "read_text", _probe_text(bad))
  assert ("xferlab.data.tokenizer", 1) in _targets(bad)
  assert _in("xferlab.data.tokenizer", *RULES[0][1]) and _in(_module_name(bad), *RULES[0][0])
  assert _private_uses(bad) == ["xferlab/models/_layering_probe.py:2 xferlab.train._hidden",
                                "xferlab/models/_layering_probe.py:4 train._x"]


def _probe_text(bad_path):
  original = pathlib.Path.read_text
  text = ("from xferlab.data.tokenizer import UNK_ID\nfrom xferlab.train import _hidden\n"
          "from xferlab import train\ntrain._x\n")

  def read_text(self, *args, **kwargs):
    return text if self == bad_path else original(self, *args, **kwargs)

  return read_text


def test_no_function_in_the_library_is_longer_than_60_lines():
  long = []
  for path in _python_files("xferlab"):
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        length = node.end_lineno - node.lineno + 1
        if length > 60:
          long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length} lines)")
  assert not long, "functions over 60 lines:\n" + "\n".join(long)
