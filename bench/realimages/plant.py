#!/usr/bin/env python3
"""Writes the application's own files for bench/realimages/app-image.sh, with FAKE secrets
planted in them, and a JSON list of what was planted (path, rule id) for measure.py.

Every value is fake but format-valid: random bodies come from a fixed seed, GitHub and npm tokens
carry a correct CRC32 base62 checksum, and the private key is generated fresh by ssh-keygen and
used nowhere. usage: plant.py CONTEXT_DIR PLANTED_JSON
"""
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import zlib

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
rng = random.Random(20261206)


def rand(n, alphabet=B62):
    return "".join(rng.choice(alphabet) for _ in range(n))


def crc_token(prefix, body):
    crc = zlib.crc32(body.encode())
    digits = ""
    while crc:
        crc, r = divmod(crc, 62)
        digits = B62[r] + digits
    return prefix + body + digits.rjust(6, "0")


def main():
    ctx, planted_json = sys.argv[1], sys.argv[2]
    app = os.path.join(ctx, "app")
    aws_id = "AKIA" + rand(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    aws_secret = rand(40, B62 + "+/")
    ghp = crc_token("ghp_", "FAKE" + rand(26))
    npm = crc_token("npm_", "FAKE" + rand(26))
    stripe = "sk_live_FAKE" + rand(20)
    db_pw = "Tq7" + rand(13)
    slack_hook = "https://hooks.slack.com/services/T%s/B%s/%s" % (
        rand(8, B62[10:36]), rand(8, B62[10:36]), rand(24))
    files = {
        ".env": f"NODE_ENV=production\nAWS_ACCESS_KEY_ID={aws_id}\n"
                f"AWS_SECRET_ACCESS_KEY={aws_secret}\nGITHUB_TOKEN={ghp}\n"
                f"DATABASE_URL=postgres://app:{db_pw}@db.internal:5432/app\n",
        "config/default.json": json.dumps({
            "port": 3000,
            "payments": {"stripeSecretKey": stripe},
            "alerts": {"slackWebhook": slack_hook},
        }, indent=2) + "\n",
        ".npmrc": f"//registry.npmjs.org/:_authToken={npm}\n",
        "src/server.js": "const express = require('express');\nconst app = express();\n"
                         "app.get('/', (req, res) => res.send('ok'));\napp.listen(3000);\n",
    }
    def item(path, rule, secret=None):
        sha = hashlib.sha256(secret.encode()).hexdigest() if secret else None
        return {"path": path, "rule": rule, "secret_sha256": sha}

    planted = [
        item("/app/.env", "aws-access-key-id", aws_id),
        item("/app/.env", "aws-secret-access-key", aws_secret),
        item("/app/.env", "github-pat-classic", ghp),
        item("/app/.env", "postgres-uri-password", db_pw),
        item("/app/config/default.json", "stripe-secret-key-live", stripe),
        item("/app/config/default.json", "slack-webhook-url"),
        item("/app/.npmrc", "npm-access-token", npm),
        item("/app/deploy/id_ed25519", "openssh-private-key"),
    ]
    for rel, text in files.items():
        p = os.path.join(app, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
    os.makedirs(os.path.join(app, "deploy"), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        key = os.path.join(tmp, "k")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C",
                        "FAKE-bench-key@strata-test", "-f", key], check=True)
        with open(key) as src, open(os.path.join(app, "deploy", "id_ed25519"), "w") as dst:
            dst.write(src.read())
    with open(planted_json, "w") as f:
        json.dump(planted, f, indent=1)


if __name__ == "__main__":
    main()
