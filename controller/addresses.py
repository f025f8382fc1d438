"""Listen and connect addresses as text: an IPv6 host goes in brackets ([::1]:6653), as
gRPC targets, URLs and every HOST:PORT option expect it."""


def address_text(host: str, port: int) -> str:
    """('::1', 6653) -> '[::1]:6653'; ('127.0.0.1', 6653) -> '127.0.0.1:6653'."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
