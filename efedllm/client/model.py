"""``DistributedModel``: a causal LM whose transformer layers run on remote servers.

    model = DistributedModel.from_pretrained("smollm2-135m-instruct", rpc_url="http://127.0.0.1:8545")
    ids = model.generate(messages=[{"role": "user", "content": "What is the capital of France?"}],
                         max_new_tokens=32, do_sample=False)
    print(model.tokenizer.decode(ids[0]))

The embeddings, final norm and LM head run here; every decoder layer runs on the servers of the route. Tokens
are produced one step at a time over one inference session, so the servers' KV caches hold the prefix.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from transformers import (
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessorList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from efedllm.client.answers import AnswerChecker
from efedllm.client.lockstep import LOCKSTEP, Lockstep
from efedllm.client.peers import ChainPeers, StaticPeers
from efedllm.client.reports import HANDED_PER_SERVER, AnswerReporter
from efedllm.client.routing import Hop
from efedllm.client.sampling import Sampling
from efedllm.client.session import REQUEST_TIMEOUT_S, InferenceSession
from efedllm.client.spotcheck import NO_SPOT_CHECKS, SpotCheck, SpotChecker
from efedllm.errors import EfedError
from efedllm.model.head import ModelEnds
from efedllm.model.source import DEFAULT_MODEL, resolve
from efedllm.model.span import pick_device


def encode(
    tokenizer, *, prompt: str | None = None, messages: list[dict] | None = None, chat: bool = True
) -> torch.Tensor:
    """Token ids ([1, n]) of a prompt as a client sends it: through the chat template for instruct models unless
    ``chat`` is False (also what a verifier's canary prompts are encoded with, verifier/prompts.py)."""
    if messages is None:
        if prompt is None:
            raise EfedError("give a prompt, messages or input_ids")
        if not (chat and tokenizer.chat_template):
            return tokenizer(prompt, return_tensors="pt")["input_ids"]
        messages = [{"role": "user", "content": prompt}]
    encoded = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt")
    return encoded["input_ids"] if not torch.is_tensor(encoded) else encoded


class DistributedModel:
    def __init__(
        self,
        *,
        ends: ModelEnds,
        tokenizer,
        generation_config: GenerationConfig,
        peers,
        timeout: float = REQUEST_TIMEOUT_S,
        handed_per_server: int = HANDED_PER_SERVER,
        spot: SpotCheck = NO_SPOT_CHECKS,
    ):
        self.ends, self.tokenizer, self.generation_config, self.peer_source = ends, tokenizer, generation_config, peers
        self.timeout = timeout
        """Seconds one request to a server may take before the client routes around that server."""
        self.num_layers = ends.config.num_hidden_layers
        self.last_route: list[Hop] = []
        self.last_failovers = 0
        self.last_hit_limit = False
        """Whether the last ``generate`` stopped at ``max_new_tokens`` rather than at an end-of-sequence token."""
        self.current_session: InferenceSession | None = None
        self.lockstep: Lockstep = LOCKSTEP
        """Sends the decode steps of this process's generations to each server together, for the server to batch
        (client/lockstep.py); ``Lockstep(max_wait_s=0)`` sends each at once."""
        """The session of the generation under way (for progress displays and tests)."""
        domain = getattr(peers, "answer_domain", None)
        self.answers = AnswerChecker(domain) if domain is not None else None
        """Checks every server's signed answer (servers found on chain) and keeps them: ``answers.kept``."""
        self.payer = getattr(peers, "payer", None)
        """Pays priced servers with signed receipts (servers found on chain, a client with an account)."""
        verifiers = getattr(peers, "verifier_endpoints", None)
        self.reporter = (
            AnswerReporter(verifiers, per_server=handed_per_server)
            if verifiers is not None and self.answers is not None
            else None
        )
        """Hands a sample of each generation's signed answers to the verifiers (servers found on chain)."""
        self.spot = SpotChecker(spot) if self.reporter is not None else None
        """Spot checks of steps on a second server (client/spotcheck.py); their disputes go to the verifiers."""

    @classmethod
    def from_pretrained(
        cls,
        model: str = DEFAULT_MODEL,
        *,
        protocol=None,
        servers: list[str] | None = None,
        device: str | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        handed_per_server: int = HANDED_PER_SERVER,
        spot: SpotCheck = NO_SPOT_CHECKS,
        progress=lambda message: None,
    ) -> DistributedModel:
        """Load the model's ends locally; find servers on chain (``protocol``) or at explicit ``servers`` URLs.
        ``timeout``: seconds one request to a server may take before the client routes around that server;
        ``handed_per_server``: signed answers per server handed to the verifiers after each generation (0: none);
        ``spot``: how often a step is checked on a second server (client/spotcheck.py; off by default).
        """
        if (protocol is None) == (servers is None):
            raise EfedError("give either a chain (protocol) or a list of server URLs")
        source = resolve(model, progress=progress)
        ends = ModelEnds(source.folder, device=pick_device(device))
        tokenizer = AutoTokenizer.from_pretrained(source.folder)
        try:
            generation_config = GenerationConfig.from_pretrained(source.folder)
        except OSError:
            generation_config = GenerationConfig()
        peers = ChainPeers(protocol) if protocol is not None else StaticPeers(servers)
        return cls(
            ends=ends,
            tokenizer=tokenizer,
            generation_config=generation_config,
            peers=peers,
            timeout=timeout,
            handed_per_server=handed_per_server,
            spot=spot,
        )

    def encode(
        self, *, prompt: str | None = None, messages: list[dict] | None = None, chat: bool = True
    ) -> torch.Tensor:
        """Token ids of a prompt; through the chat template for instruct models unless ``chat`` is False."""
        return encode(self.tokenizer, prompt=prompt, messages=messages, chat=chat)

    @torch.inference_mode()
    def generate(
        self,
        input_ids: torch.Tensor | None = None,
        *,
        prompt: str | None = None,
        messages: list[dict] | None = None,
        chat: bool = True,
        max_new_tokens: int = Sampling.max_new_tokens,
        do_sample: bool = False,
        temperature: float = Sampling.temperature,
        top_k: int = Sampling.top_k,
        top_p: float = Sampling.top_p,
        seed: int | None = None,
        eos_token_id: int | list[int] | None = None,
        on_token: Callable[[int], None] | None = None,
        output_logits: bool = False,
    ):
        """New token ids ([1, n]) after the prompt, greedy or sampled (temperature, top-k, top-p).

        ``on_token`` is called with each token id as it arrives (streaming). With ``output_logits`` the result is
        ``(ids, [logits of each step])``.
        """
        if input_ids is None:
            input_ids = self.encode(prompt=prompt, messages=messages, chat=chat)
        if input_ids.dim() != 2 or input_ids.shape[0] != 1:
            raise EfedError("generate takes one sequence: input_ids of shape [1, length]")
        eos = self._eos(eos_token_id)
        warpers = self._warpers(do_sample, temperature, top_k, top_p)
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        session = self.current_session = InferenceSession(
            self.peer_source.peers(),
            self.num_layers,
            timeout=self.timeout,
            answers=self.answers,
            payer=self.payer,
            spot=self.spot,
            lockstep=self.lockstep,
        )
        new_tokens, all_logits = [], []
        first_answer = len(self.answers.kept) if self.answers is not None else 0
        first_dispute = len(self.spot.disputes) if self.spot is not None else 0
        self.last_hit_limit = False
        try:
            step_input = input_ids
            for _ in range(max_new_tokens):
                hidden = self.ends.embed_tokens(step_input)
                hidden = session.step(hidden)
                # batched with the generations of this process whose steps came back with this one
                logits = self.ends.next_logits(hidden, together=session.arrived_with)
                if output_logits:
                    all_logits.append(logits)
                token = self._next_token(logits, input_ids, new_tokens, warpers, do_sample, generator)
                new_tokens.append(token)
                if on_token:
                    on_token(token)
                if token in eos:
                    break
                step_input = torch.tensor([[token]])
            else:
                self.last_hit_limit = max_new_tokens > 0
        finally:
            self.last_route, self.last_failovers = session.route, session.failovers
            if session.failed and hasattr(self.peer_source, "invalidate"):
                self.peer_source.invalidate()  # a failed server is probed again before the next generation
            self.current_session = None
            session.close()
            if self.reporter is not None:
                disputes = self.spot.disputes[first_dispute:]
                disputed = [a for d in disputes for a in (d.first, d.second)]
                self.reporter.hand(self.answers.kept[first_answer:], disputed=disputed)
        ids = torch.tensor([new_tokens], dtype=torch.long)
        return (ids, all_logits) if output_logits else ids

    def eos_ids(self) -> set[int]:
        """The token ids that end a generation by default (the model's generation config)."""
        return self._eos(None)

    def _eos(self, eos_token_id) -> set[int]:
        eos = eos_token_id if eos_token_id is not None else self.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        return set(eos if isinstance(eos, list) else [eos] if eos is not None else [])

    @staticmethod
    def _warpers(do_sample: bool, temperature: float, top_k: int, top_p: float) -> LogitsProcessorList:
        warpers = LogitsProcessorList()
        if not do_sample:
            return warpers
        if temperature <= 0:
            raise EfedError("temperature must be > 0 when sampling")
        if temperature != 1.0:
            warpers.append(TemperatureLogitsWarper(temperature))
        if top_k:
            warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            warpers.append(TopPLogitsWarper(top_p))
        return warpers

    @staticmethod
    def _next_token(logits, input_ids, new_tokens, warpers, do_sample, generator) -> int:
        if not do_sample:
            return int(logits.argmax(-1))
        context = torch.cat([input_ids, torch.tensor([new_tokens], dtype=torch.long)], dim=1)
        scores = warpers(context, logits)
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator))
