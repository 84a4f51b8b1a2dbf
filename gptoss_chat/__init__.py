"""gptoss-chat: a terminal chat for OpenAI's gpt-oss models, running them in-process."""

__version__ = "0.1.0"
