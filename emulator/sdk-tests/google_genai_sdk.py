"""Google's `google-genai` Python SDK as a client of `gemini-emulator`.

If the emulator is faithful, the official SDK cannot tell it from Gemini: upload (resumable,
two chunks), wait for ACTIVE, generate with the File, stream, list with paging, delete, the
403 an expired File gives, models list/get, count_tokens, and context caches (create, get,
update, list, generate with one, delete). Run by scripts/sdk-test.sh:

    python google_genai_sdk.py --emulator target/debug/gemini-emulator
"""

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from google import genai
from google.genai import errors, types


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def control(base: str, path: str, body=None, method="POST"):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + "/_emulator" + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as res:
        return json.loads(res.read() or b"{}")


def wait_ready(base: str, proc: subprocess.Popen) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            sys.exit(f"the emulator exited with {proc.returncode}")
        try:
            control(base, "/clock", method="GET")
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("the emulator did not start")


def wait_active(client, f):
    deadline = time.time() + 30
    while f.state.name == "PROCESSING":  # the docs' loop
        assert time.time() < deadline, "never ACTIVE"
        time.sleep(0.2)
        f = client.files.get(name=f.name)
    assert f.state.name == "ACTIVE", f.state
    return f


def check(name, fn):
    fn()
    print(f"ok   {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--emulator", required=True)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([args.emulator, "--listen", f"127.0.0.1:{port}", "--control",
                             "--processing-ms", "400", "--process-every-file", "--chunk-delay-ms", "0"])
    try:
        wait_ready(base, proc)
        run(base)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(base: str) -> None:
    client = genai.Client(api_key="sdk-test-key",
                          http_options=types.HttpOptions(base_url=base, api_version="v1beta"))
    tmp = tempfile.mkdtemp()
    big = os.path.join(tmp, "report.pdf")
    data = bytes((i * 2654435761 >> 7) & 0xFF for i in range(9_000_000))
    with open(big, "wb") as fh:
        fh.write(data)
    digest = hashlib.sha256(data).hexdigest()
    state = {}

    def upload_and_wait():
        f = client.files.upload(file=big, config={"display_name": "report", "mime_type": "application/pdf"})
        assert f.name.startswith("files/") and len(f.name) == len("files/") + 12, f.name
        assert f.size_bytes == 9_000_000, f.size_bytes
        assert f.uri == f"{base}/v1beta/files/{f.name[6:]}", f.uri
        state["file"] = wait_active(client, f)
        log = control(base, "/requests", method="GET")["requests"]
        chunks = [(r["upload_command"], r["upload_offset"], r["body_bytes"]) for r in log if r["upload_offset"] is not None]
        assert chunks == [("upload", 0, 8388608), ("upload, finalize", 8388608, 611392)], chunks
        assert not any(r["had_api_key"] for r in log if r["upload_offset"] is not None), "no key on chunks"

    def generate_with_file():
        f = state["file"]
        res = client.models.generate_content(model="gemini-2.5-flash", contents=[f, "Summarize"])
        assert f"9000000 bytes, SHA-256 {digest[:12]}" in res.text, res.text
        assert "Summarize" in res.text
        assert res.candidates[0].finish_reason.name == "STOP"
        last = control(base, "/requests", method="GET")["requests"][-1]
        part = last["json"]["contents"][0]["parts"][0]
        assert "fileData" in part and "inlineData" not in part, part

    def stream():
        chunks = list(client.models.generate_content_stream(model="gemini-2.5-flash",
                                                            contents="one two three four five six seven eight"))
        assert len(chunks) >= 3, len(chunks)
        assert "one two three" in "".join(c.text or "" for c in chunks)
        assert chunks[-1].candidates[0].finish_reason.name == "STOP"
        assert chunks[-1].usage_metadata.total_token_count > 0
        ids = {c.response_id for c in chunks}
        assert len(ids) == 1 and None not in ids, ids

    def list_with_paging():
        for i in range(4):
            path = os.path.join(tmp, f"note{i}.txt")
            with open(path, "w") as fh:
                fh.write(f"note {i}")
            client.files.upload(file=path)
        control(base, "/requests", method="DELETE")
        names = [f.name for f in client.files.list(config={"page_size": 2})]
        assert len(names) == 5 and len(set(names)) == 5, names
        pages = [r for r in control(base, "/requests", method="GET")["requests"] if r["path"] == "/v1beta/files"]
        assert len(pages) == 3, f"{len(pages)} list requests for 5 files in pages of 2"

    def delete():
        victim = next(f for f in client.files.list() if f.display_name != "report")
        client.files.delete(name=victim.name)
        try:
            client.files.get(name=victim.name)
            raise AssertionError("a deleted File is still there")
        except errors.ClientError as e:
            assert e.code == 403 and e.status == "PERMISSION_DENIED", (e.code, e.status)

    def expired_file_403():
        f = state["file"]
        control(base, "/clock", {"by": "49h"})
        try:
            client.models.generate_content(model="gemini-2.5-flash", contents=[f, "Still there?"])
            raise AssertionError("an expired File was used")
        except errors.ClientError as e:
            assert e.code == 403, e.code
            assert e.message == f"You do not have permission to access the File {f.name[6:]} or it may not exist.", e.message

    def sdk_default_version_v1():
        v1 = genai.Client(api_key="sdk-test-key", http_options=types.HttpOptions(base_url=base))
        path = os.path.join(tmp, "v1.txt")
        with open(path, "w") as fh:
            fh.write("v1")
        f = wait_active(v1, v1.files.upload(file=path))
        assert "/v1/files/" in f.uri, f.uri
        assert "text/plain, 2 bytes" in v1.models.generate_content(model="gemini-2.5-flash", contents=[f, "?"]).text

    def models_list_and_get():
        models = list(client.models.list())
        names = [m.name for m in models]
        assert "models/gemini-2.5-flash" in names and "models/gemini-2.5-pro" in names, names
        flash = client.models.get(model="gemini-2.5-flash")
        assert flash.name == "models/gemini-2.5-flash", flash.name
        assert flash.input_token_limit == 1048576 and flash.output_token_limit == 65536, flash
        assert "createCachedContent" in flash.supported_actions, flash.supported_actions
        assert flash.thinking is True, flash.thinking
        try:
            client.models.get(model="gemini-1.0-ultra")
            raise AssertionError("an unknown model was found")
        except errors.ClientError as e:
            assert e.code == 404 and e.status == "NOT_FOUND", (e.code, e.status)

    def count_tokens():
        # 14 characters: 4 tokens; the PDF File (9 MB that are no PDF): one page, 258.
        res = client.models.count_tokens(model="gemini-2.5-flash", contents="What is in it?")
        assert res.total_tokens == 4, res
        res = client.models.count_tokens(model="gemini-2.5-flash", contents=[state["file"], "What is in it?"])
        assert res.total_tokens == 258 + 4, res
        answer = client.models.generate_content(model="gemini-2.5-flash", contents=[state["file"], "What is in it?"])
        assert answer.usage_metadata.prompt_token_count == 262, answer.usage_metadata
        details = {d.modality.name: d.token_count for d in answer.usage_metadata.prompt_tokens_details}
        assert details == {"TEXT": 4, "DOCUMENT": 258}, answer.usage_metadata.prompt_tokens_details

    def caches():
        handbook = "word " * 1000  # 5000 characters: 1250 tokens, over 2.5 Flash's 1024
        try:
            client.caches.create(model="gemini-2.5-flash", config=types.CreateCachedContentConfig(
                contents=["too small"], ttl="300s"))
            raise AssertionError("a tiny cache was made")
        except errors.ClientError as e:
            assert e.code == 400 and e.message.startswith("Cached content is too small."), e.message
        cache = client.caches.create(model="gemini-2.5-flash", config=types.CreateCachedContentConfig(
            contents=[handbook], display_name="handbook", ttl="300s"))
        assert cache.name.startswith("cachedContents/"), cache.name
        assert cache.model == "models/gemini-2.5-flash", cache.model
        assert cache.display_name == "handbook", cache.display_name
        assert cache.usage_metadata.total_token_count == 1250, cache.usage_metadata
        assert (cache.expire_time - cache.create_time).total_seconds() == 300, (cache.create_time, cache.expire_time)
        got = client.caches.get(name=cache.name)
        assert got.name == cache.name and got.expire_time == cache.expire_time, got
        updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="600s"))
        assert (updated.expire_time - updated.update_time).total_seconds() == 600, updated
        assert cache.name in [c.name for c in client.caches.list()]
        res = client.models.generate_content(model="gemini-2.5-flash", contents="Summarize the handbook",
                                             config=types.GenerateContentConfig(cached_content=cache.name))
        assert res.usage_metadata.cached_content_token_count == 1250, res.usage_metadata
        assert res.usage_metadata.prompt_token_count == 1250 + 6, res.usage_metadata
        assert "Summarize the handbook" in res.text, res.text
        last = control(base, "/requests", method="GET")["requests"][-1]
        assert last["json"]["cachedContent"] == cache.name, last["json"]
        client.caches.delete(name=cache.name)
        try:
            client.caches.get(name=cache.name)
            raise AssertionError("a deleted cache is still there")
        except errors.ClientError as e:
            assert e.code == 403 and e.message == "CachedContent not found (or permission denied)", e.message
        assert cache.name not in [c.name for c in client.caches.list()]

    def thought_signature():
        res = client.models.generate_content(model="gemini-3-pro-preview", contents="Sign this")
        parts = res.candidates[0].content.parts
        assert parts[-1].text == "" and parts[-1].thought_signature, parts[-1]
        assert "model gemini-3-pro-preview" in res.text, res.text
        chat = client.chats.create(model="gemini-3-pro-preview")
        chat.send_message("first")
        again = chat.send_message("second")  # the signed part goes back in the history
        assert "You asked: “second”" in again.text, again.text
        sent = control(base, "/requests", method="GET")["requests"][-1]["json"]["contents"]
        assert sent[1]["role"] == "model" and "thoughtSignature" in sent[1]["parts"][-1], sent[1]

    check("upload (two chunks) and wait for ACTIVE", upload_and_wait)
    check("generateContent with the File as fileData", generate_with_file)
    check("streamGenerateContent, one responseId", stream)
    check("files.list follows nextPageToken", list_with_paging)
    check("files.delete, then get is 403", delete)
    check("models.list and models.get", models_list_and_get)
    check("count_tokens equals promptTokenCount, the details by modality", count_tokens)
    check("caches: create, get, update, list, use, delete", caches)
    check("Gemini 3 answers carry a thoughtSignature", thought_signature)
    check("an expired File gives the 403", expired_file_403)
    check("the SDK's default v1", sdk_default_version_v1)
    print("google-genai SDK: all checks passed")


if __name__ == "__main__":
    main()
