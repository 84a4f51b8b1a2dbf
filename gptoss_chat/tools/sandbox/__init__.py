"""Docker sandbox of the python tool: hardened containers, stateful sessions, image building.

- config.py: SandboxConfig and the locked-down container options
- engine.py: connecting to Docker, picking the image, removing leftovers, clear failures
- container.py: one container running repl_server.py, and the host side of its protocol
- session.py: PythonSandbox, stateful or stateless, turning runs into reports
- image_build.py: `gptoss-chat sandbox build` (debootstrap + docker import)
"""
