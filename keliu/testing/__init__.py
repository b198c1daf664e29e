"""Test support, kept out of the product packages: simulators and fakes that the tests, the benches and the demo
use (``keliu demo`` replays a simulated store day). No component imports this package (an import contract of
pyproject.toml says so)."""
