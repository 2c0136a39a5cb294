"""awscli_runner.py - runs AWS CLI commands for awscli_test.sh in one
long-lived process of the CLI that /usr/bin/aws starts (awscli.clidriver):
its start-up (python, the service models) takes seconds on a busy machine,
a command once started takes milliseconds.

Usage: PYTHON awscli_runner.py REQUEST_FIFO RC_FIFO OUT ERR

Each request is the command's arguments, one a line, written to
REQUEST_FIFO; the command's stdout and stderr go to the files OUT and ERR
(truncated first), then its exit code is written to RC_FIFO. Arguments
cannot hold a newline. The environment (credentials, region) is the
process's own: a command that needs another runs /usr/bin/aws instead.

A request "@py FILE EXPR" evaluates the python expression EXPR over the
JSON in FILE (as `d`), for the test's checks: a bool is the exit code (0
when true), anything else is printed. "@post URL BODY" posts BODY to the
emulator's admin URL and prints the answer (exit code 1 unless HTTP 200).
"""
import contextlib
import json
import sys
import traceback
import urllib.error
import urllib.request

import awscli.clidriver


def evaluate(path, expr):
    with open(path) as f:
        d = json.load(f)
    v = eval(expr, {"json": json, "d": d})
    if isinstance(v, bool):
        return 0 if v else 1
    print(v)
    return 0


def post(url, body):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body.encode())) as r:
            print(r.read().decode())
            return 0
    except urllib.error.HTTPError as e:
        print(e.read().decode(), file=sys.stderr)
        return 1


def run(driver, args):
    if args[:1] == ["@post"]:
        return post(args[1], args[2])
    if args[:1] == ["@py"]:
        try:
            return evaluate(args[1], args[2])
        except Exception:
            traceback.print_exc()
            return 2
    try:
        return driver.main(args)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except BaseException:
        # The runner outlives a command that crashes the CLI: the test
        # sees the traceback and exit code 255, as from /usr/bin/aws.
        traceback.print_exc()
        return 255


def main():
    requests, codes, out_path, err_path = sys.argv[1:5]
    driver = awscli.clidriver.create_clidriver()
    while True:
        with open(requests) as f:
            args = f.read().split("\n")
        if args and args[-1] == "":
            args.pop()
        with open(out_path, "w") as out, open(err_path, "w") as err:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = run(driver, args)
        with open(codes, "w") as f:
            f.write(f"{rc}\n")


if __name__ == "__main__":
    main()
