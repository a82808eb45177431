"""Ask a running `vidclf serve` for a video's label, with only the standard library.

    python examples/serve_client.py http://127.0.0.1:8000 video.mp4 [--timeline]

Prints the answer (the fields of a `vidclf predict` row, as JSON). The video is sent as the
multipart form field `file`, as browsers and `curl -F file=@video.mp4` send it. HTTP status:
200 scored; 413 larger than the server's --max_upload_mb; 422 not a video, or it cannot be
decoded (the reason is in "status"); 408 the upload stalled; 504 the model was busy too long.
"""

import json
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path


def classify(server: str, video: str, timeline: bool = False, timeout: float = 300) -> dict:
    boundary = uuid.uuid4().hex
    name = Path(video).name.replace('"', "_")
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    body += Path(video).read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    url = f"{server.rstrip('/')}/predict" + ("?timeline=1" if timeline else "")
    request = urllib.request.Request(url, data=body, headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:  # 4xx/5xx: the JSON says why
        answer = json.loads(err.read() or b"{}")
        raise SystemExit(f"HTTP {err.code}: {answer.get('status') or answer.get('detail')}")


if __name__ == "__main__":
    print(json.dumps(classify(sys.argv[1], sys.argv[2], timeline="--timeline" in sys.argv[3:]), indent=2))
