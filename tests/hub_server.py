"""A stand-in Hugging Face Hub on 127.0.0.1 that answers as the Hub does, for `HF_ENDPOINT`.

It serves the few routes a deploy uses (space and model info, repo creation, settings, hardware, and an
upload as huggingface_hub sends it: preupload, tree, commit), keeps what it is sent, and refuses what the
Hub refuses with the Hub's own replies (status, `X-Error-Message` header and JSON `error` body):

| when | status | the Hub's reason | where it was read |
|---|---|---|---|
| a token the Hub does not know | 401 | Invalid credentials in Authorization header | huggingface_hub utils/_http.py (2.4.0) matches this text |
| creating under another namespace | 403 | You don't have the rights to create a space under this namespace | nlp-with-transformers/notebooks#60 |
| a free account creating a Gradio Space on cpu-basic | 402 | Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic requires a PRO subscription. | huggingface_hub#4535 (2026-07-16) |
| a name that is taken | 409 | You already created this space repo | sentence-transformers#2972 |
| no such repo | 404 | Repository not found (X-Error-Code: RepoNotFound) | huggingface_hub utils/_http.py (2.4.0) |

Which hardware a free account may create a Gradio Space on: ZeroGPU only (hub-docs spaces-overview.md at
242f4a1, 2026-08-22: "Free personal accounts in good standing can still host up to 2 Gradio Spaces running
on ZeroGPU"); paid hardware with billing set up (huggingface_hub 2.4.0's create_repo docstring).
"""

import base64
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlparse

import yaml

from tests.loopback import on_loopback

INVALID_TOKEN = "Invalid credentials in Authorization header"
NOT_YOUR_NAMESPACE = "You don't have the rights to create a space under this namespace"
FREE_ACCOUNT_ON_CPU = ("Static Spaces are free for everyone, but hosting Gradio and Docker Spaces on free cpu-basic "
                       "requires a PRO subscription.")
NAME_TAKEN = "You already created this space repo"
FREE_HARDWARE = ("zero-a10g",)
SUGGESTIBLE = ("cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
               "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8")


@dataclass
class Account:
    name: str
    token: str
    plan: str = "free"  # "free" or "pro"


@dataclass
class Space:
    private: bool
    hardware: str
    files: dict = field(default_factory=dict)  # path -> bytes


class StandInHub:
    def __init__(self, accounts, models=None):
        self.accounts = {account.token: account for account in accounts}
        self.spaces: dict[str, Space] = {}
        self.models = models or {}  # repo id -> file names
        self.requests: list = []  # (method, path, Authorization header)
        self.validated: list = []  # the README front matters it accepted

    # --- the routes ---------------------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers, body: bytes):
        self.requests.append((method, path, headers.get("Authorization")))
        account = self.accounts.get((headers.get("Authorization") or "").removeprefix("Bearer "))
        if headers.get("Authorization") and account is None:
            return refusal(401, INVALID_TOKEN)
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)", path):
            space = self.spaces.get(match[1])
            if space is None:
                return not_found()
            return 200, {"id": match[1], "private": space.private, "sdk": "gradio", "siblings": [
                {"rfilename": name} for name in space.files],
                "runtime": {"stage": "BUILDING", "hardware": {"current": None, "requested": space.hardware}}}
        if match := re.fullmatch(r"/api/models/([^/]+/[^/]+)", path):
            if match[1] not in self.models:
                return not_found()
            return 200, {"id": match[1], "siblings": [{"rfilename": name} for name in self.models[match[1]]]}
        if path == "/api/repos/create" and method == "POST":
            return self.create(account, json.loads(body))
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/settings", path):
            visibility = json.loads(body).get("visibility")
            if visibility:
                self.spaces[match[1]].private = visibility == "private"
            return 200, {}
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/hardware", path):
            self.spaces[match[1]].hardware = json.loads(body)["flavor"]
            return 200, {"stage": "BUILDING", "hardware": {"current": None, "requested": json.loads(body)["flavor"]}}
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/preupload/main", path):
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                   for f in json.loads(body)["files"]]}
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/tree/main(/.*)?", path):
            return 200, [{"type": "file", "path": name, "oid": "0", "size": len(data)}
                         for name, data in self.spaces[match[1]].files.items()]
        if path == "/api/validate-yaml":
            return self.validate(json.loads(body))
        if match := re.fullmatch(r"/api/spaces/([^/]+/[^/]+)/commit/main", path):
            return self.commit(match[1], body)
        return 404, {"error": f"the stand-in Hub does not serve {method} {path}"}

    def create(self, account: Account | None, request: dict):
        space_id = f"{request.get('organization') or account.name}/{request['name']}"
        if account is None or space_id.split("/")[0] != account.name:
            return refusal(403, NOT_YOUR_NAMESPACE)
        if space_id in self.spaces:
            return refusal(409, NAME_TAKEN)
        hardware = request.get("hardware") or "cpu-basic"
        if account.plan == "free" and hardware not in FREE_HARDWARE:
            return refusal(402, FREE_ACCOUNT_ON_CPU)
        self.spaces[space_id] = Space(private=request.get("visibility") == "private", hardware=hardware)
        return 200, {"url": f"https://huggingface.co/spaces/{space_id}", "name": space_id}

    def validate(self, request: dict):
        """The README's front matter, held against the Spaces configuration reference (hub-docs
        spaces-config-reference.md at 242f4a1): the fields a Space must have, and a suggested_hardware
        that is one of the flavours it lists (ZeroGPU's is not among them)."""
        config = yaml.safe_load(request["content"].split("---")[1])
        errors = [f'"{key}" is required' for key in ("sdk", "app_file") if key not in config]
        if config.get("suggested_hardware") not in (None, *SUGGESTIBLE):
            errors.append(f'"suggested_hardware" must be one of {", ".join(SUGGESTIBLE)}')
        if errors:
            return 400, {"error": "Invalid metadata in README.md.\n" + "\n".join(f"- {e}" for e in errors)}
        self.validated.append(config)
        return 200, {"errors": [], "warnings": []}

    def commit(self, space_id: str, body: bytes):
        space = self.spaces[space_id]
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "file":
                space.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] in ("deletedFile", "deletedEntry"):
                space.files.pop(item["value"]["path"], None)
        return 200, {"success": True, "commitOid": "0" * 40, "commitUrl": f"https://huggingface.co/spaces/{space_id}/commit/{'0' * 40}"}


def refusal(status: int, reason: str):
    return status, {"error": reason}, {"X-Error-Message": reason}


def not_found():
    return 404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}


@contextmanager
def serving(hub: StandInHub):
    """The stand-in on a free loopback port; yields its address (for HF_ENDPOINT)."""

    class Handler(BaseHTTPRequestHandler):
        def respond(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.headers.get("Content-Encoding") == "gzip":
                import gzip

                body = gzip.decompress(body)
            status, payload, *extra = hub.answer(self.command, urlparse(self.path).path, self.headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(extra[0] if extra else {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = respond

        def log_message(self, *args):
            pass

    with on_loopback(Handler) as url:
        yield url
