"""A minimal OpenAI-compatible ``POST /v1/chat/completions`` over a local transformers causal LM, for the
tests of ``training/quality/openai_judge.py``.

The standard library's ``ThreadingHTTPServer`` on 127.0.0.1 (a free port) in a background thread; one
request at a time reaches the model (a lock). A request's messages go through the tokenizer's chat template
like vLLM does it (``add_generation_prompt``, default true; ``continue_final_message`` continues a final
assistant turn), then one forward pass gives the next token's ``top_logprobs`` (OpenAI's shape:
``choices[0].logprobs.content[0].top_logprobs[*].{token, logprob, bytes}``, tokens as decoded text) and,
for ``max_tokens > 1``, greedy generation gives the message content. Test knobs: ``api_key`` (else 401),
``script`` (canned ``(status, body)`` answers served first), ``hide_digits_when`` (a text in the last
user turn that removes the digit tokens from the top log-probs: a model that does not answer with a
label) and ``requests`` (method, path, headers and body of every request received)::

    with ChatCompletionsServer(model, tokenizer, api_key="sk-test") as server:
        judge = OpenAIJudge(server.base_url, server.model_name, ...)
"""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

MAX_TOP_LOGPROBS = 20


class ChatCompletionsServer:
    def __init__(self, model, tokenizer, *, model_name: str = "local-model", api_key: str | None = None,
                 max_top_logprobs: int = MAX_TOP_LOGPROBS) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.model_name = model_name
        self.api_key = api_key
        self.max_top_logprobs = max_top_logprobs
        self.script: list[tuple[int, Any]] = []
        self.hide_digits_when: str | None = None
        self.requests: list[dict] = []
        self.prompts: list[str] = []
        self._model_lock = threading.Lock()
        self._script_lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_dir(cls, model_dir, **kwargs) -> Self:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32, local_files_only=True)
        return cls(model, tokenizer, **kwargs)

    # ----------------------------------------------------------------------------- lifecycle
    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "the server is not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> Self:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:   # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = server.handle(self.command, self.path, dict(self.headers.items()), raw)
                data = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- requests
    @staticmethod
    def _error(status: int, message: str, kind: str = "invalid_request_error") -> tuple[int, dict]:
        return status, {"error": {"message": message, "type": kind, "param": None, "code": None}}

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        self.requests.append({"method": method, "path": path, "headers": headers, "body": body})
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return self._error(404, f"no route {method} {path}", "not_found")
        if self.api_key is not None and headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "authentication_error")
        with self._script_lock:
            canned = self.script.pop(0) if self.script else None
        if canned is not None:
            return canned
        if not isinstance(body, dict) or not body.get("messages"):
            return self._error(400, "the body must be JSON with messages")
        try:
            return 200, self._complete(body)
        except Exception as exc:  # noqa: BLE001 - the test server answers like one
            return self._error(400, f"{type(exc).__name__}: {exc}")

    def _complete(self, body: dict) -> dict:
        import torch

        messages = body["messages"]
        k = int(body.get("top_logprobs") or 0)
        if k > self.max_top_logprobs:
            raise ValueError(f"top_logprobs must be <= {self.max_top_logprobs}")
        prompt = self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=bool(body.get("add_generation_prompt", True)),
            continue_final_message=bool(body.get("continue_final_message", False)))
        self.prompts.append(prompt)
        ids = torch.tensor([self.tokenizer.encode(prompt, add_special_tokens=False)])
        max_tokens = int(body.get("max_tokens") or 16)
        with self._model_lock, torch.inference_mode():
            logp = torch.log_softmax(self.model(input_ids=ids, use_cache=False).logits[0, -1].double(), dim=-1)
            if max_tokens > 1:
                out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                          max_new_tokens=max_tokens, do_sample=False, num_beams=1,
                                          pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
                new = out[0, ids.shape[1]:].tolist()
            else:
                new = [int(torch.argmax(logp))]
        content = self.tokenizer.decode(new, skip_special_tokens=True)
        eos = self.tokenizer.eos_token_id
        finish = "stop" if (eos is not None and eos in new) or len(new) < max_tokens else "length"
        logprobs = None
        if body.get("logprobs"):
            hide = self.hide_digits_when
            user_text = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
            hidden = hide is not None and hide in user_text
            order = torch.argsort(logp, descending=True).tolist()
            top = []
            for token_id in order:
                if len(top) == k:
                    break
                token = self.tokenizer.decode([token_id])
                if hidden and token.strip().isdigit():
                    continue
                top.append({"token": token, "logprob": float(logp[token_id]), "bytes": list(token.encode())})
            first = new[0]
            chosen = self.tokenizer.decode([first])
            logprobs = {"content": [{"token": chosen, "logprob": float(logp[first]),
                                     "bytes": list(chosen.encode()), "top_logprobs": top}]}
        return {"id": f"chatcmpl-test-{len(self.requests)}", "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", self.model_name),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                             "logprobs": logprobs, "finish_reason": finish}],
                "usage": {"prompt_tokens": ids.shape[1], "completion_tokens": len(new),
                          "total_tokens": ids.shape[1] + len(new)}}
