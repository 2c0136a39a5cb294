#!/usr/bin/env python3
"""docs/openapi.yaml as JSON, for `provisio serve` to answer GET /openapi.json.

usage: embed.py OPENAPI_YAML OUT_JSON OUT_C

Writes the document as JSON (OUT_JSON, which the tests compare with what the
server answers) and as a C string (OUT_C, compiled into the serve module), so
the served document is the docs' one and cannot drift from it.
"""
import json
import sys

import yaml


def main():
    src, out_json, out_c = sys.argv[1:4]
    with open(src, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    text = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
    with open(out_json, "w", encoding="utf-8") as f:
        f.write(text)
    data = text.encode("utf-8")
    with open(out_c, "w", encoding="utf-8") as f:
        f.write("/* Generated from docs/openapi.yaml by tools/openapi/embed.py: do not edit. */\n")
        f.write("#include <stddef.h>\n")
        f.write("const char srv_openapi_json[] = {\n")
        for i in range(0, len(data), 16):
            f.write("\t" + ", ".join(str(b) for b in data[i:i + 16]) + ",\n")
        f.write("\t0};\n")
        f.write("const size_t srv_openapi_json_len = %d;\n" % len(data))


if __name__ == "__main__":
    main()
