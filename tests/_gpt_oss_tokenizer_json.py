"""Build a gpt-oss-style Hugging Face tokenizer.json from quicktok's o200k_base, offline.

The real file (openai/gpt-oss-20b, tokenizer.json) was made by transformers' tiktoken converter:
a byte-level BPE model whose vocab maps GPT-2 byte-to-unicode strings to ranks, merges derived
from the ranks, the o200k split regex, and the Harmony special tokens as added tokens. We build
the same structure with the `tokenizers` library itself, so the JSON layout is the library's.
"""

from __future__ import annotations

from pathlib import Path

from gptoss_chat.encoding import MERGEABLE_RANKS

O200K_PATTERN = "|".join(
    [
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
        r"\p{N}{1,3}",
        r" ?[^\s\p{L}\p{N}]+[\r\n/]*",
        r"\s*[\r\n]+",
        r"\s+(?!\S)",
        r"\s+",
    ]
)

# The added tokens of gpt-oss's tokenizer.json: ids 199998..200018.
NAMED_SPECIALS = {
    199998: "<|startoftext|>",
    199999: "<|endoftext|>",
    200002: "<|return|>",
    200003: "<|constrain|>",
    200005: "<|channel|>",
    200006: "<|start|>",
    200007: "<|end|>",
    200008: "<|message|>",
    200012: "<|call|>",
    200018: "<|endofprompt|>",
}


def gpt_oss_added_tokens() -> list[tuple[int, str]]:
    return [(i, NAMED_SPECIALS.get(i, f"<|reserved_{i}|>")) for i in range(199998, 200019)]


def _byte_encoder() -> dict[str, str]:
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    encoder = {chr(byte): chr(byte) for byte in printable}
    shifted = 256
    for byte in range(256):
        if chr(byte) not in encoder:
            encoder[chr(byte)] = chr(shifted)
            shifted += 1
    return encoder


def write_gpt_oss_tokenizer_json(path: Path) -> Path:
    """Write a gpt-oss-style tokenizer.json at `path`."""
    import quicktok
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    source = quicktok.get_encoding("o200k_base")
    by_rank = [source.decode_single_token_bytes(r) for r in range(MERGEABLE_RANKS)]
    ranks = {token: rank for rank, token in enumerate(by_rank)}
    to_text = str.maketrans(_byte_encoder())  # latin-1 char of each byte -> GPT-2 char
    texts = [token.decode("latin-1").translate(to_text) for token in by_rank]

    # Merges as the tiktoken converter derives them: every split of a token into two tokens,
    # ordered by the merged token's rank, then by the parts' ranks.
    merges: list[tuple[int, int, int]] = []
    for rank, token in enumerate(by_rank):
        for cut in range(1, len(token)):
            left, right = ranks.get(token[:cut]), ranks.get(token[cut:])
            if left is not None and right is not None:
                merges.append((rank, left, right))
    merges.sort()
    tokenizer = Tokenizer(
        BPE(
            dict(zip(texts, range(MERGEABLE_RANKS), strict=True)),
            [(texts[left], texts[right]) for _, left, right in merges],
            fuse_unk=False,
        )
    )
    tokenizer.model.ignore_merges = True
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(O200K_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    # Added tokens get the next free ids in order, so ids follow from the list's order.
    for _, content in gpt_oss_added_tokens():
        tokenizer.add_special_tokens([AddedToken(content, normalized=False, special=True)])
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(path))
    return path
