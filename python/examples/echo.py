# SPDX-License-Identifier: MIT OR Apache-2.0
"""The Python twin of examples/c_echo.c (same protocol, so either side may be C or Python).

    python3 echo.py serve NAME [COUNT]        answer COUNT calls (default: forever)
    python3 echo.py call NAME TEXT [OPCODE]   call NAME with TEXT, print the reply

The server answers a call with opcode + 1 and the request's bytes; a call with opcode
1000 + k (k = 1..16) is answered with the error -k. The client prints
"reply opcode N: TEXT", or "error KIND CODE" (exit 3) when the call raised an IpcError.
"""
import sys
import time

import veridian_ipc as vipc


def serve(name, count):
    with vipc.Server.publish(name) as server:
        print(f"echo.py: serving {name}", flush=True)
        served = 0
        while count < 0 or served < count:
            request = server.receive()
            if not request.is_call:
                continue
            if 1000 < request.opcode <= 1016:
                server.reply_error(request, -(request.opcode - 1000), timeout=1.0)
            else:
                server.reply(request, request.data, request.opcode + 1, timeout=1.0)
            served += 1
        print(f"echo.py: served {served} calls", flush=True)
        # Closing discards what the clients have not read yet (the last reply, say): first
        # let them hang up, for up to 5 s.
        give_up = vipc.now() + 5
        while server.stats()["connections"] > 0 and vipc.now() < give_up:
            time.sleep(0.001)


def call(name, text, opcode):
    for _ in range(500):  # the server may still be starting: up to 5 s
        try:
            conn = vipc.Connection.connect(name)
            break
        except vipc.EndpointNotFound:
            time.sleep(0.01)
    else:
        conn = vipc.Connection.connect(name)
    with conn:
        try:
            reply = conn.call(text.encode(), opcode, timeout=5.0)
        except vipc.IpcError as e:
            print(f"error {e.kind} {e.code}")
            return 3
        print(f"reply opcode {reply.opcode}: {reply.data.decode()}")
        return 0


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else -1)
    elif len(sys.argv) >= 4 and sys.argv[1] == "call":
        sys.exit(call(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 1))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
