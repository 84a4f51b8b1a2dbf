"""The `python` builtin tool: the model's code runs in a locked-down Docker container.

Harmony contract (as in openai/gpt-oss): the model addresses a message to recipient `python`
whose text is the source code; the answer is one message from author `python` to the assistant,
on the call's channel, holding the combined stdout/stderr. The tool description in the system
message tells the model whether state persists, how long a call may run, and that there is no
internet, and it is kept true to the configured sandbox.
"""

from __future__ import annotations

from openai_harmony import ToolNamespaceConfig

from gptoss_chat.tools.base import Proposal, Tool, ToolCall, ToolCallError, ToolResult, tool_message
from gptoss_chat.tools.sandbox.config import WORK_DIR, SandboxConfig
from gptoss_chat.tools.sandbox.engine import SandboxUnavailable
from gptoss_chat.tools.sandbox.session import PythonSandbox

PURPOSE = (
    "Use this tool to execute Python code in your chain of thought. The code will not be shown "
    "to the user. This tool should be used for internal reasoning, but not for code that is "
    "intended to be visible to the user (e.g. when creating plots, tables, or files)."
)


def describe(config: SandboxConfig) -> str:
    """The model-facing description, matching the sandbox's mode and limits."""
    timeout = f"{config.timeout_s:.1f}"
    internet = "enabled" if config.network else "disabled"
    if config.stateful:
        return (
            f"{PURPOSE}\n\n"
            "When you send a message containing Python code to python, it will be executed in a "
            "stateful Jupyter notebook environment. python will respond with the output of the "
            f"execution or time out after {timeout} seconds. The drive at '{WORK_DIR}' can be "
            "used to save and persist user files. Internet access for this session is "
            f"{internet}."
        )
    return (
        "Use this tool to execute STATELESS Python code in your chain of thought. "
        + PURPOSE.split(". ", 1)[1]
        + "\n"
        "When you send a message containing python code to python, it will be executed in a "
        "stateless docker container, and the stdout of that process will be returned to you. "
        "You have to use print statements to access the output. Execution times out after "
        f"{timeout} seconds. Internet access for this session is {internet}.\n\n"
        "IMPORTANT: Your python environment is not shared between calls. You will have to pass "
        "your entire code each time."
    )


class PythonTool(Tool):
    """Runs the model's Python code in the Docker sandbox, after the user approves it."""

    name = "python"

    def __init__(self, config: SandboxConfig | None = None, sandbox: PythonSandbox | None = None):
        self.config = config or SandboxConfig()
        self.sandbox = sandbox or PythonSandbox(self.config)

    def system_config(self) -> ToolNamespaceConfig:
        builtin = ToolNamespaceConfig.python()
        return ToolNamespaceConfig(
            name=builtin.name, description=describe(self.config), tools=builtin.tools
        )

    def propose(self, call: ToolCall) -> Proposal:
        if call.recipient != self.name:
            raise ToolCallError(
                f"the python tool has no function {call.function!r}: send the code itself as "
                "a message to 'python'"
            )
        code = call.arguments
        if not code.strip():
            raise ToolCallError("the message to python was empty: send Python source code")
        mode = "stateful session" if self.config.stateful else "fresh container"
        network = "with network" if self.config.network else "no network"
        return Proposal(
            tool=self.name,
            call=call,
            title=f"Run Python code ({mode}, {network}, {self.config.timeout_s:g} s limit)",
            preview=code,
            preview_kind="code",
            language="python",
            payload=code,
        )

    def run(self, proposal: Proposal) -> ToolResult:
        report = self.sandbox.execute(proposal.payload)
        message = tool_message(self.name, report.model_text, channel=proposal.call.channel)
        return ToolResult(
            messages=[message],
            summary=report.summary,
            is_error=report.is_error,
            data=report,
        )

    def warm_up(self) -> SandboxUnavailable | None:
        """Optional, at session start in a worker thread: check Docker and start the container
        early. Returns the problem to show the user if Docker is unusable."""
        return self.sandbox.warm_up()

    def interrupt(self) -> None:
        """Stop a running call at once (from another thread, e.g. the UI's stop key)."""
        self.sandbox.interrupt()

    def close(self) -> None:
        """Delete the sandbox container(s); interrupts a running call."""
        self.sandbox.close()
