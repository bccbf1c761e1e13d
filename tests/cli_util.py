"""What the Python test drivers (tests/zoo, tests/real_models) share about the `tessera` CLI."""
import subprocess


def opencl_present(cli):
    """Whether `tessera devices` lists an OpenCL device."""
    out = subprocess.run([cli, "devices"], capture_output=True, text=True).stdout
    return any(line.split()[:1] and line.split()[0].startswith("opencl")
               for line in out.splitlines()[1:])
