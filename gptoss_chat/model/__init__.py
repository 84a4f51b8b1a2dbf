"""The in-process gpt-oss engine: config, weights loader, transformer, KV cache, generator."""
