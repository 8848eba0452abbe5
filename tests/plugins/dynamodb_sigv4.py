#!/usr/bin/env python3
"""The dynamodb plugin's requests against an independent SigV4 implementation, and wrong
credentials under the shim.

Neither dynalite nor DynamoDB Local checks signatures, so a loopback recorder (here) plays
DynamoDB: `curlcache list` opens the cache through the plugin (DescribeTable, then Scan),
the recorder keeps every request as it arrived, and Debian's python3-botocore signs each
again (SigV4Auth, with the request's own X-Amz-Date, the same key pair and session token,
over the headers the plugin signed). The Authorization headers must be identical. Also:
the secret key never travels, the session token goes as a signed X-Amz-Security-Token,
and a key pair from a profile of the shared credentials file signs the same way (with the
endpoint and region from CURLCACHE_DYNAMODB_ENDPOINT and CURLCACHE_DYNAMODB_REGION).

Then the recorder refuses every request as DynamoDB does a wrong key pair
(UnrecognizedClientException): curl under the shim gets its bytes, byte-identical, with
one warning that says the credentials were refused.

    dynamodb_sigv4.py --curlcache PATH --shim PATH --plugin-dir DIR

Exit status 0 pass, 1 fail, 77 botocore or the shim missing.
"""

import argparse
import datetime
import http.server
import json
import os
import sys
import threading
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shim"))
import harness  # noqa: E402

ACCESS_KEY = "AKIDEXAMPLE7CURLCACHE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLE//session+token=="
ANSWERS = {
    "DescribeTable": {"Table": {"TableName": "sigv4", "TableStatus": "ACTIVE"}},
    "Scan": {"Items": [], "Count": 0, "ScannedCount": 0},
}


class Recorder(http.server.ThreadingHTTPServer):
    def __init__(self, refuse=False):
        self.requests = []
        self.refuse = refuse
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.server_address[1]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.command, self.path, list(self.headers.items()), body))
        op = self.headers.get("X-Amz-Target", "").split(".")[-1]
        if self.server.refuse:
            status, answer = 400, {"__type": "com.amazon.coral.service#UnrecognizedClientException",
                                   "message": "The security token included in the request is invalid."}
        else:
            status, answer = 200, ANSWERS.get(op, {})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def botocore_authorization(request, access_key, secret_key, token, region):
    """botocore's Authorization header for the recorded request, signed at its X-Amz-Date
    over the headers its SignedHeaders names."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    method, path, headers, body = request
    by_name = {k.lower(): v for k, v in headers}
    authorization = by_name["authorization"]
    signed = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    stamp = datetime.datetime.strptime(by_name["x-amz-date"], "%Y%m%dT%H%M%SZ")
    # botocore adds host, X-Amz-Date and X-Amz-Security-Token itself.
    given = {k: by_name[k] for k in signed if k not in ("host", "x-amz-date", "x-amz-security-token")}
    aws = AWSRequest(method=method, url="http://%s%s" % (by_name["host"], path), data=body,
                     headers=given)
    with mock.patch("botocore.auth.datetime") as clock:
        clock.datetime.utcnow.return_value = stamp
        SigV4Auth(Credentials(access_key, secret_key, token or None), "dynamodb",
                  region).add_auth(aws)
    return authorization, aws.headers["Authorization"], signed


def write_config(path, plugin_dir, endpoint):
    """endpoint None: the test gives it (and the region) as CURLCACHE_DYNAMODB_* variables."""
    with open(path, "w") as f:
        f.write('backend = "dynamodb"\nplugin_dir = "%s"\n[dynamodb]\ntable = "sigv4"\n'
                'connect_timeout = "500ms"\n' % plugin_dir)
        if endpoint:
            f.write('endpoint = "%s"\nregion = "us-east-1"\n' % endpoint)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--curlcache", required=True)
    p.add_argument("--shim", required=True)
    p.add_argument("--plugin-dir", required=True)
    p.add_argument("--keep", action="store_true")
    args = p.parse_args()
    shim = harness.shim_or_skip(args.shim, False)
    try:
        import botocore.auth  # noqa: F401
    except ImportError:
        print("python3-botocore is not installed (scripts/install-deps.sh)")
        return 77
    failures = []

    def check(ok, what):
        print("%s: %s" % ("ok" if ok else "FAIL", what))
        if not ok:
            failures.append(what)

    with harness.Scratch(args.keep, "curlcache-sigv4-") as scratch:
        home = os.path.join(scratch, "home")
        config = os.path.join(scratch, "dynamodb.toml")

        def signed_like_botocore(env, access_key, secret_key, token, what, region="us-east-1"):
            recorder = Recorder()
            from_env = region != "us-east-1"
            write_config(config, args.plugin_dir, None if from_env else recorder.endpoint)
            if from_env:
                env = dict(env, CURLCACHE_DYNAMODB_ENDPOINT=recorder.endpoint,
                           CURLCACHE_DYNAMODB_REGION=region)
            r = harness.run([args.curlcache, "list", "--config", config], scratch, env)
            recorder.shutdown()
            ops = [dict((k.lower(), v) for k, v in q[2]).get("x-amz-target", "") for q in recorder.requests]
            check(r.code == 0 and len(recorder.requests) >= 2,
                  "%s: curlcache list through the plugin: %s (%r)" % (what, ops, r.stderr))
            for request in recorder.requests:
                ours, theirs, signed = botocore_authorization(request, access_key, secret_key, token,
                                                              region)
                check("/%s/dynamodb/aws4_request" % region in ours, "%s: signed for %s" % (what, region))
                check(ours == theirs, "%s: %s signed as botocore signs it\n  ours:     %s\n  botocore: %s"
                      % (what, request[2] and dict(request[2]).get("X-Amz-Target"), ours, theirs))
                raw = repr(request).encode()
                check(secret_key.encode() not in raw, "%s: the secret key never travels" % what)
                if token:
                    check("x-amz-security-token" in signed and
                          dict((k.lower(), v) for k, v in request[2]).get("x-amz-security-token") == token,
                          "%s: the session token is a signed X-Amz-Security-Token" % what)

        env = harness.clean_env(home, {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                                       "AWS_SESSION_TOKEN": TOKEN})
        env.pop("AWS_PROFILE", None)
        signed_like_botocore(env, ACCESS_KEY, SECRET_KEY, TOKEN, "environment")

        # A profile of ~/.aws/credentials, no session token.
        os.makedirs(os.path.join(home, ".aws"), exist_ok=True)
        with open(os.path.join(home, ".aws", "credentials"), "w") as f:
            f.write("[default]\naws_access_key_id = AKIDNOTTHISONE\naws_secret_access_key = x\n\n"
                    "[ci]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile/secret+key\n")
        env = harness.clean_env(home, {"AWS_PROFILE": "ci"})
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        # ... and the endpoint and region from CURLCACHE_DYNAMODB_ENDPOINT / _REGION.
        signed_like_botocore(env, "AKIDPROFILE", "profile/secret+key", None, "profile ci",
                             "eu-central-1")

        # Wrong credentials: one clear warning, the transfer untouched.
        refusing = Recorder(refuse=True)
        write_config(config, args.plugin_dir, refusing.endpoint)
        with harness.Origin(scratch) as origin:
            env = harness.clean_env(home, {"CURLCACHE_CONFIG": config, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                                           "AWS_SECRET_ACCESS_KEY": SECRET_KEY})
            url = origin.base + "/bytes/3000"
            plain = harness.run(["curl", "-s", url, url], scratch, env)
            under = harness.run(["curl", "-s", url, url], scratch, env, shim)
            lines = under.stderr.splitlines()
            check(under.code == 0 and under.stdout == plain.stdout,
                  "refused credentials: curl's output is byte-identical")
            check(len(lines) == 1 and b"credentials were refused" in lines[0] and
                  b"UnrecognizedClientException" in lines[0] and SECRET_KEY.encode() not in under.stderr,
                  "... with one clear warning: %r" % under.stderr)
        refusing.shutdown()
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
