"""A video upload (``multipart/form-data``, field ``file``) streamed into a private temporary file.

The body is read chunk by chunk and written as it comes, so a large upload never sits in memory, and it is
cut off as soon as it passes the limit (413), whatever ``Content-Length`` claimed. The file lives in the
service's own upload folder under a name the service chooses (the client's file name is only echoed back,
never used as a path), and :meth:`Upload.remove` (called in a ``finally`` by every route) deletes it; a
failed upload removes its file itself.
"""

import os
import tempfile

from ..loader.video_files import VIDEO_EXTENSIONS
from .errors import ClientError

FIELD = "file"
# A refused request's body is read and dropped up to this much / this long before the answer (see drain_body).
DRAIN_BYTES = 32 * 1024 * 1024
DRAIN_SECONDS = 5.0
# Room for the multipart framing and small text fields around the file part, beyond the file-size limit.
FRAMING_BYTES = 64 * 1024
HOW_TO_SEND = "send the video as multipart/form-data in the field 'file' (curl -F file=@video.mp4 ...)"


class Upload:
    """A received file: ``path`` (the server's temporary file), ``filename`` (as the client named it, for
    messages only), ``size`` in bytes."""

    def __init__(self, path, filename, size):
        self.path, self.filename, self.size = path, filename, size

    def remove(self):
        """Delete the temporary file (again is fine)."""
        self.path = _remove_file(self.path)


def _remove_file(path):
    """Delete ``path`` if it is still there (``None``: nothing to do); returns ``None`` for the caller to keep."""
    if path is not None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    return None


def _content_type(headers):
    from python_multipart.multipart import parse_options_header

    kind, options = parse_options_header(headers.get("content-type", ""))
    return kind.decode("latin-1").lower(), options


def check_declared_size(headers, max_bytes):
    """413 before reading anything when ``Content-Length`` already says the body is too large."""
    declared = headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes + FRAMING_BYTES:
        raise ClientError(f"upload of {int(declared)} bytes is over the limit of {max_bytes} bytes "
                          "(--max_upload_mb)", 413)


def _suffix(filename):
    ext = os.path.splitext(filename or "")[1].lower()
    return ext if ext in VIDEO_EXTENSIONS else ".video"


class _PartReader:
    """Callbacks for python-multipart's streaming parser: the first ``file`` part goes to a temporary file."""

    def __init__(self, folder, max_bytes):
        self.folder, self.max_bytes = folder, max_bytes
        self.header_field, self.header_value, self.headers = b"", b"", {}
        self.handle, self.path, self.filename, self.size = None, None, None, 0
        self.in_file, self.files = False, 0

    def callbacks(self):
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field_data,
                "on_header_value": self.header_value_data, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self):
        self.headers, self.in_file = {}, False

    def header_field_data(self, data, start, end):
        self.header_field += data[start:end]

    def header_value_data(self, data, start, end):
        self.header_value += data[start:end]

    def header_end(self):
        self.headers[self.header_field.decode("latin-1").strip().lower()] = self.header_value
        self.header_field, self.header_value = b"", b""

    def headers_finished(self):
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name != FIELD:
            return  # other form fields are skipped (their bytes still count towards the body limit)
        self.files += 1
        if self.files > 1:
            raise ClientError(f"more than one '{FIELD}' in the form; send one video per request")
        self.filename = options.get(b"filename", b"").decode("utf-8", "replace") or "upload"
        handle, self.path = tempfile.mkstemp(dir=self.folder, prefix="upload-", suffix=_suffix(self.filename))
        self.handle = os.fdopen(handle, "wb")
        self.in_file = True

    def part_data(self, data, start, end):
        if not self.in_file:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise ClientError(f"upload '{self.filename}' is over the limit of {self.max_bytes} bytes (--max_upload_mb)",
                              413)
        self.handle.write(data[start:end])

    def part_end(self):
        if self.in_file:
            self.handle.close()
            self.in_file = False

    def discard(self):
        if self.handle is not None:
            self.handle.close()
        self.path = _remove_file(self.path)


async def receive_upload(request, folder, max_bytes, timeout_s=None, flag="--timeout_s"):
    """Read ``request``'s multipart body; return the :class:`Upload` of its ``file`` field.

    Raises:
        ClientError: 400 (not multipart, no ``file`` field, an empty file, a malformed or interrupted body),
            408 (the body has not arrived within ``timeout_s`` seconds, named by ``flag``: a client that sends
            too slowly cannot hold a place in the queue for ever), 413 (over ``max_bytes``; the rest of the
            body is drained first, see :func:`drain_body`). Nothing is left in ``folder`` then.
    """
    import asyncio

    if timeout_s is None:
        return await _receive(request, folder, max_bytes)
    try:
        return await asyncio.wait_for(_receive(request, folder, max_bytes), max(0.0, timeout_s))
    except asyncio.TimeoutError:
        raise ClientError(f"the upload did not arrive within {timeout_s:.3g} s ({flag}); send it again over a faster "
                          "connection", 408) from None


async def _receive(request, folder, max_bytes):
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser

    kind, options = _content_type(request.headers)
    if kind != "multipart/form-data" or not options.get(b"boundary"):
        await drain_body(request.receive, request.headers)
        raise ClientError(f"expected multipart/form-data, got '{kind or 'no content type'}'; {HOW_TO_SEND}", 400)
    try:
        check_declared_size(request.headers, max_bytes)
    except ClientError:
        await drain_body(request.receive, request.headers)
        raise
    reader = _PartReader(folder, max_bytes)
    parser = MultipartParser(options[b"boundary"], reader.callbacks())
    received, more = 0, True
    try:
        while more:
            message = await request.receive()
            if message["type"] == "http.disconnect":
                raise ClientError("the client went away during the upload", 400)
            chunk, more = message.get("body", b""), message.get("more_body", False)
            received += len(chunk)
            if received > max_bytes + FRAMING_BYTES:
                raise ClientError(f"request body is over the limit of {max_bytes} bytes (--max_upload_mb)", 413)
            parser.write(chunk)
        parser.finalize()
        if reader.in_file:  # the body ended inside the file part
            raise ClientError(f"the upload of '{reader.filename}' ended early (the multipart body is cut off); "
                              "send it again", 400)
    except MultipartParseError as err:
        reader.discard()
        if more:
            await drain_body(request.receive, request.headers, started=True)
        raise ClientError(f"malformed multipart body ({err}); {HOW_TO_SEND}", 400) from None
    except ClientError:
        reader.discard()
        if more:
            await drain_body(request.receive, request.headers, started=True)
        raise
    except BaseException:  # cancellation, a failing disk: no file is left
        reader.discard()
        raise
    if reader.path is None:
        raise ClientError(f"no field '{FIELD}' in the form; {HOW_TO_SEND}", 400)
    if reader.size == 0:
        reader.discard()
        raise ClientError(f"upload '{reader.filename}' is empty (0 bytes); send a video file", 400)
    return Upload(reader.path, reader.filename, reader.size)


async def drain_body(receive, headers, started=False):
    """Read and drop what is left of the body of a request being refused (401, 413, 503).

    A client that is still sending a body does not read the answer until it has sent it all; a server that
    answers and closes with unread bytes makes the kernel reset the connection, and the client then sees a
    reset instead of the status (what nginx's "lingering close" avoids). So the rest is read first, bounded by
    :data:`DRAIN_BYTES` and :data:`DRAIN_SECONDS` (beyond that the answer goes out anyway). A client that
    asked ``Expect: 100-continue`` has sent nothing yet (when nothing was read, ``started`` False): it gets the
    answer at once, and never sends the body.
    """
    import asyncio

    if not started and "100-continue" in headers.get("expect", "").lower():
        return
    declared = headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > DRAIN_BYTES:
        return  # too much to read: the client has to cope with the reset
    if declared.strip() == "0" or (not declared and "chunked" not in headers.get("transfer-encoding", "").lower()):
        return  # no body
    loop = asyncio.get_running_loop()
    deadline, total = loop.time() + DRAIN_SECONDS, 0
    while total <= DRAIN_BYTES:
        try:
            message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body", False):
            return
