"""libnetapi32 from Python's ctypes, as a Linux user calls it.

ctypes.c_wchar_p is 4-byte wchar_t on Linux, so strings are passed as UTF-16LE
bytes with a 2-byte NUL, and names read back as UTF-16 from the buffer.

    python3 client.py LIBRARY COMPUTER TEXT   send, list and check error codes
    python3 client.py LIBRARY del NAME        print NetMessageNameDel's status
"""

import ctypes
import os
import sys

NERR_Success = 0
ERROR_INVALID_PARAMETER = 87
ERROR_INVALID_LEVEL = 124
NERR_NameNotFound = 2273
NERR_MsgNotStarted = 2284
MAX_PREFERRED_LENGTH = 0xFFFFFFFF


def wide(text):
    """A NUL-terminated UTF-16 string for an LPCWSTR argument."""
    return ctypes.create_string_buffer(text.encode("utf-16-le") + b"\0\0")


def read_wide(address):
    """The NUL-terminated UTF-16 string at address."""
    units = ctypes.cast(address, ctypes.POINTER(ctypes.c_uint16))
    n = 0
    while units[n] != 0:
        n += 1
    return ctypes.string_at(address, 2 * n).decode("utf-16-le")


class MSG_INFO_1(ctypes.Structure):
    _fields_ = [
        ("msgi1_name", ctypes.c_void_p),
        ("msgi1_forward_flag", ctypes.c_uint32),
        ("msgi1_forward", ctypes.c_void_p),
    ]


def delete(netapi, name):
    delete = netapi.NetMessageNameDel
    delete.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    delete.restype = ctypes.c_uint32
    print(delete(None, wide(name)))


def main():
    library, computer, text = sys.argv[1:4]
    netapi = ctypes.CDLL(library)
    if computer == "del":
        delete(netapi, text)
        return
    send = netapi.NetMessageBufferSend
    send.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32]
    send.restype = ctypes.c_uint32
    add = netapi.NetMessageNameAdd
    add.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    add.restype = ctypes.c_uint32
    enum = netapi.NetMessageNameEnum
    enum.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_void_p),
        ctypes.c_uint32,
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
        ctypes.POINTER(ctypes.c_uint32),
    ]
    enum.restype = ctypes.c_uint32
    free = netapi.NetApiBufferFree
    free.argtypes = [ctypes.c_void_p]
    free.restype = ctypes.c_uint32

    body = text.encode("utf-16-le")
    status = send(None, wide(computer), wide("PYTHON"), body, len(body))
    assert status == NERR_Success, status
    print("sent", len(body), "bytes")

    assert send(None, None, None, body, len(body)) == ERROR_INVALID_PARAMETER
    assert send(None, wide(computer), None, body, len(body) - 1) == ERROR_INVALID_PARAMETER
    assert send(None, wide("X" * 16), None, body, len(body)) == ERROR_INVALID_PARAMETER
    assert send(None, wide("NOSUCHNAME"), None, body, len(body)) == NERR_NameNotFound

    assert add(None, wide("pydesk")) == NERR_Success

    buf = ctypes.c_void_p()
    read = ctypes.c_uint32()
    total = ctypes.c_uint32()
    resume = ctypes.c_uint32(0)
    status = enum(None, 1, ctypes.byref(buf), MAX_PREFERRED_LENGTH, ctypes.byref(read), ctypes.byref(total), ctypes.byref(resume))
    assert status == NERR_Success, status
    assert read.value == total.value and read.value >= 2, (read.value, total.value)
    entries = ctypes.cast(buf, ctypes.POINTER(MSG_INFO_1))
    names = [read_wide(entries[i].msgi1_name) for i in range(read.value)]
    assert all(entries[i].msgi1_forward is None for i in range(read.value))
    print("aliases", " ".join(names))
    assert names[0] == computer.upper(), names
    assert "PYDESK" in names, names
    assert free(buf) == NERR_Success

    status = enum(None, 7, ctypes.byref(buf), MAX_PREFERRED_LENGTH, ctypes.byref(read), ctypes.byref(total), None)
    assert status == ERROR_INVALID_LEVEL, status
    assert buf.value is None

    # The library reads the socket path from the environment on every call.
    os.environ["NETSEND_CONTROL_SOCKET"] = "/nonexistent/netsend/control.sock"
    assert send(None, wide(computer), None, body, len(body)) == NERR_MsgNotStarted
    print("all checks passed")


main()
