"""Log in to the mes-testkit primary with real MySQL client libraries.

Usage: clients.py '<json list of attempts>'

Each attempt is an object:
  driver:   "pymysql" | "connector-pure" | "connector-cext"
  host, port, user, password
  ssl_ca:   path of the CA PEM (enables TLS with certificate and host-name verification)
  server_public_key: path of the server's RSA public key PEM (PyMySQL only)
  queries:  SQL statements to run after login (default: a version query)

Prints one line per attempt: `RESULT {"ok": true, "rows": [...]}` or
`RESULT {"ok": false, "errno": 1045, "msg": "..."}`; `CEXT unavailable: ...` when the
connector's C extension cannot be loaded (that attempt is reported as skipped).
"""

import json
import sys


def run_pymysql(a):
    import pymysql

    kw = dict(host=a["host"], port=a["port"], user=a["user"], password=a["password"],
              connect_timeout=20, read_timeout=20, write_timeout=20)
    if a.get("ssl_ca"):
        kw["ssl"] = {"ca": a["ssl_ca"], "check_hostname": True}
    else:
        kw["ssl_disabled"] = True  # PyMySQL >= 1.2 would otherwise prefer TLS
    if a.get("server_public_key"):
        with open(a["server_public_key"], "rb") as f:
            kw["server_public_key"] = f.read()
    conn = pymysql.connect(**kw)
    try:
        rows = []
        with conn.cursor() as cur:
            for q in a["queries"]:
                cur.execute(q)
                rows.append([list(r) for r in cur.fetchall()])
        return rows
    finally:
        conn.close()


def run_connector(a, pure):
    import mysql.connector

    if not pure:
        try:
            import mysql.connector.connection_cext  # noqa: F401
        except ImportError as e:
            return {"skipped": "C extension unavailable: %s" % e}
    kw = dict(host=a["host"], port=a["port"], user=a["user"], password=a["password"],
              use_pure=pure, connection_timeout=20)
    if a.get("ssl_ca"):
        kw.update(ssl_ca=a["ssl_ca"], ssl_verify_cert=True, ssl_verify_identity=True)
    else:
        kw["ssl_disabled"] = True
    conn = mysql.connector.connect(**kw)
    try:
        rows = []
        cur = conn.cursor()
        for q in a["queries"]:
            cur.execute(q)
            rows.append([list(r) for r in cur.fetchall()])
        cur.close()
        return rows
    finally:
        conn.close()


def main():
    attempts = json.loads(sys.argv[1])
    for a in attempts:
        a.setdefault("queries", ["SELECT @@version, @@version_comment"])
        driver = a["driver"]
        try:
            if driver == "pymysql":
                out = run_pymysql(a)
            elif driver == "connector-pure":
                out = run_connector(a, True)
            elif driver == "connector-cext":
                out = run_connector(a, False)
            else:
                raise ValueError("unknown driver %r" % driver)
            if isinstance(out, dict):
                result = dict(ok=False, **out)
            else:
                result = {"ok": True, "rows": out}
        except Exception as e:  # report, do not crash: the Rust test asserts on it
            errno = getattr(e, "errno", None)
            if errno is None and getattr(e, "args", None) and isinstance(e.args[0], int):
                errno = e.args[0]
            result = {"ok": False, "errno": errno, "type": type(e).__name__, "msg": str(e)}
        result["driver"] = driver
        print("RESULT " + json.dumps(result, default=str), flush=True)


if __name__ == "__main__":
    main()
