"""Metadata signals: every file is generated here, in tmp_path or memory."""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from hf_detector.signals import metadata
from hf_detector.signals.metadata import DISCLAIMER, MetadataReport, read_metadata

A1111_PARAMETERS = (
    "portrait photo of a woman, freckles, 85mm\nNegative prompt: blurry, lowres\n"
    "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 7, Seed: 1234, Size: 512x512, Model hash: abc123"
)
COMFY_PROMPT = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 42, "steps": 20}}})


def _png(info: PngInfo | None = None, size: tuple[int, int] = (16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (120, 90, 60)).save(buffer, "PNG", pnginfo=info)
    return buffer.getvalue()


def _jpeg(exif: Image.Exif | None = None, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (120, 90, 60)).save(buffer, "JPEG", exif=exif or Image.Exif(), **kwargs)
    return buffer.getvalue()


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _insert_png_chunk(png: bytes, chunk: bytes) -> bytes:
    """Insert a raw chunk right after IHDR (8 signature bytes + 25 bytes IHDR chunk)."""
    return png[:33] + chunk + png[33:]


def _insert_app1(jpeg: bytes, payload: bytes) -> bytes:
    """Insert an APP1 segment right after SOI."""
    assert jpeg[:2] == b"\xff\xd8"
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def _xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def _by_key(report: MetadataReport) -> dict[str, metadata.Signal]:
    return {signal.key: signal for signal in report.signals}


def test_png_generator_text_chunks(tmp_path: Path) -> None:
    info = PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    info.add_text("prompt", COMFY_PROMPT, zip=True)  # zTXt
    info.add_itxt("workflow", json.dumps({"nodes": []}), zip=True)  # compressed iTXt
    info.add_text("Software", "GIMP 2.10")
    path = tmp_path / "generated.png"
    path.write_bytes(_png(info))

    report = read_metadata(path)

    signals = _by_key(report)
    assert signals["parameters"].suggests == "generator"
    assert "Negative prompt" in signals["parameters"].value
    assert "AUTOMATIC1111" in signals["parameters"].note
    assert signals["prompt"].suggests == "generator"
    assert json.loads(signals["prompt"].value) == json.loads(COMFY_PROMPT)
    assert signals["workflow"].suggests == "generator"
    assert signals["Software"].suggests == "edited"
    assert report.format == "PNG"
    assert "generator" in report.summary
    assert report.disclaimer == DISCLAIMER
    assert "proves nothing" in report.disclaimer


def test_png_text_after_idat_and_comment_heuristic() -> None:
    png = _png()
    comment = _png_chunk(b"tEXt", b"Comment\0" + json.dumps({"prompt": "a face", "steps": 28}).encode())
    png = png[:-12] + comment + png[-12:]  # before IEND, after IDAT: PIL's lazy info would miss it
    report = read_metadata(png)
    assert _by_key(report)["Comment"].suggests == "generator"


def test_exif_camera_fields(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    exif[0x0110] = "Canon EOS 5D Mark IV"
    exif[0x0131] = "Adobe Photoshop Lightroom Classic 12.0"
    exif.get_ifd(0x8769)[0x9003] = "2023:06:01 10:20:30"
    path = tmp_path / "photo.jpg"
    path.write_bytes(_jpeg(exif))

    report = read_metadata(str(path))

    signals = _by_key(report)
    assert signals["Make/Model"].value == "Canon Canon EOS 5D Mark IV"
    assert signals["Make/Model"].suggests == "camera"
    assert signals["DateTimeOriginal"].value == "2023:06:01 10:20:30"
    assert signals["DateTimeOriginal"].suggests == "camera"
    assert signals["Software"].suggests == "edited"
    assert "camera" in report.summary and "weak hint" in report.summary
    assert report.format == "JPEG"


def test_exif_generator_software_and_a1111_user_comment() -> None:
    exif = Image.Exif()
    exif[0x0131] = "Midjourney v6"
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + A1111_PARAMETERS.encode("utf-16-be")
    report = read_metadata(_jpeg(exif))
    signals = _by_key(report)
    assert signals["Software"].suggests == "generator"
    assert signals["UserComment"].suggests == "generator"
    assert signals["UserComment"].value.startswith("portrait photo of a woman")


def test_sixty_kilobyte_exif_string_is_read_and_shortened() -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription, near the 64 KB APP1 limit
    exif[0x010F] = "Nikon"
    report = read_metadata(_jpeg(exif))
    signals = _by_key(report)
    assert signals["Make/Model"].value == "Nikon"
    description = signals["ImageDescription"].value
    assert len(description) <= metadata.MAX_VALUE_CHARS
    assert description.startswith("xxxx") and description.endswith("…")


@pytest.mark.parametrize(
    ("xmp_body", "expected_value", "expected"),
    [
        (
            '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            'Iptc4xmpExt:DigitalSourceType="http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"/>',
            "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
            "ai-declared",
        ),
        (
            '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
            "<Iptc4xmpExt:DigitalSourceType>"
            "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
            "</Iptc4xmpExt:DigitalSourceType></rdf:Description>",
            "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
            "ai-declared",
        ),
        (
            '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/">'
            '<Iptc4xmpExt:DigitalSourceType rdf:resource="http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"/>'
            "</rdf:Description>",
            "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture",
            "camera",
        ),
    ],
)
def test_xmp_digital_source_type_in_jpeg_app1(xmp_body: str, expected_value: str, expected: str) -> None:
    payload = b"http://ns.adobe.com/xap/1.0/\0" + _xmp_packet(xmp_body)
    jpeg = _insert_app1(_jpeg(), payload)
    report = read_metadata(jpeg)
    signal = _by_key(report)["Iptc4xmpExt:DigitalSourceType"]
    assert signal.value == expected_value
    assert signal.suggests == expected
    if expected == "ai-declared":
        assert "declares AI-generated" in report.summary


def test_xmp_in_png_itxt_with_creator_tool() -> None:
    info = PngInfo()
    packet = _xmp_packet(
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="Adobe Firefly" '
        'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        'Iptc4xmpExt:DigitalSourceType="trainedAlgorithmicMedia"/>'
    ).decode()
    info.add_itxt("XML:com.adobe.xmp", packet, zip=True)
    report = read_metadata(_png(info))
    signals = _by_key(report)
    assert signals["Iptc4xmpExt:DigitalSourceType"].suggests == "ai-declared"
    assert signals["xmp:CreatorTool"].suggests == "generator"


def test_no_metadata_proves_nothing() -> None:
    report = read_metadata(_png())
    assert report.signals == []
    assert "No metadata found" in report.summary and "proves nothing" in report.summary
    assert report.to_rows() == []
    assert DISCLAIMER in report.to_markdown()


def test_multi_megabyte_text_chunk_is_bounded() -> None:
    huge = b"parameters\0" + b"Steps: 20, " * 500_000  # 5.5 MB tEXt
    bomb = b"prompt\0\0" + zlib.compress(b"a" * 50_000_000, 1)  # zTXt inflating to 50 MB
    png = _insert_png_chunk(_insert_png_chunk(_png(), _png_chunk(b"tEXt", huge)), _png_chunk(b"zTXt", bomb))
    start = time.perf_counter()
    report = read_metadata(png)
    elapsed = time.perf_counter() - start
    signals = _by_key(report)
    assert len(signals["parameters"].value) <= metadata.MAX_VALUE_CHARS
    assert "first 64 KB" in signals["parameters"].note
    assert len(signals["prompt"].value) <= metadata.MAX_VALUE_CHARS
    assert elapsed < 2.0


def test_total_text_budget_and_signal_cap() -> None:
    png = _png()
    for index in range(60):
        png = _insert_png_chunk(png, _png_chunk(b"tEXt", f"key{index}\0".encode() + b"v" * 60_000))
    report = read_metadata(png)
    assert len(report.signals) <= metadata.MAX_SIGNALS
    assert report.truncated
    kept = sum(len(signal.value) for signal in report.signals)
    assert kept <= metadata.MAX_SIGNALS * metadata.MAX_VALUE_CHARS


@pytest.mark.parametrize(
    "data",
    [
        b"this is not an image at all",
        b"\x89PNG\r\n\x1a\n" + b"\x00\x00\xff\xff" + b"tEXt" + b"short",  # chunk longer than the file
        b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\0\0" + b"\x00" * 20,  # truncated APP1
        b"",
    ],
)
def test_garbage_never_raises(data: bytes) -> None:
    report = read_metadata(data)
    assert isinstance(report, MetadataReport)
    assert report.summary


def test_truncated_png_keeps_text_found_before_the_cut() -> None:
    info = PngInfo()
    info.add_text("parameters", A1111_PARAMETERS)
    png = _png(info, size=(64, 64))
    report = read_metadata(png[: len(png) - 40])
    assert _by_key(report)["parameters"].suggests == "generator"


def test_missing_and_oversized_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    report = read_metadata(tmp_path / "missing.jpg")
    assert report.errors and "no such file" in report.errors[0]
    big = tmp_path / "big.png"
    big.write_bytes(_png())
    monkeypatch.setattr(metadata, "MAX_FILE_BYTES", 10)
    report = read_metadata(big)
    assert report.errors and "not inspected" in report.errors[0]
    assert "could not be read" in report.summary


def test_c2pa_marker_timeout_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("c2pa")

    def slow(data: bytes, mime: str | None) -> None:
        time.sleep(1.0)

    monkeypatch.setattr(metadata, "_read_c2pa", slow)
    monkeypatch.setattr(metadata, "C2PA_TIMEOUT_S", 0.1)
    start = time.perf_counter()
    report = read_metadata(_jpeg(comment=b"c2pa"))
    assert time.perf_counter() - start < 0.9
    assert any("timed out" in signal.value for signal in report.signals)


def _signed_c2pa_jpeg() -> bytes:
    """Sign a JPEG with a throwaway certificate chain (no network: no timestamp authority)."""
    c2pa = pytest.importorskip("c2pa")
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def name(common: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hf-detector tests"),
            ]
        )

    def usage(ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=True,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=ca,
            crl_sign=ca,
            encipher_only=False,
            decipher_only=False,
        )

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("Test CA"))
        .issuer_name(name("Test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage(True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("Test signer"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    chain = cert.public_bytes(pem) + ca.public_bytes(pem)
    private = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, private, None))
    manifest = {
        "claim_generator_info": [{"name": "hf-detector-tests", "version": "0.1"}],
        "title": "generated.jpg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "softwareAgent": {"name": "Test Diffusion"},
                            "digitalSourceType": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
                        }
                    ]
                },
            }
        ],
    }
    out = io.BytesIO()
    c2pa.Builder(json.dumps(manifest)).sign(signer, "image/jpeg", io.BytesIO(_jpeg()), out)
    return out.getvalue()


def test_c2pa_content_credentials() -> None:
    report = read_metadata(_signed_c2pa_jpeg())
    credentials = report.suggests("content-credentials")
    assert credentials and credentials[0].value.startswith("hf-detector-tests")
    assert "hf-detector tests" in credentials[0].note  # issuer
    declared = report.suggests("ai-declared")
    assert (
        declared and "trainedAlgorithmicMedia" in declared[0].value and "Test Diffusion" in declared[0].value
    )
    assert "declares AI-generated" in report.summary


def test_report_serialises() -> None:
    info = PngInfo()
    info.add_text("parameters", "a|b\nc")
    report = read_metadata(_png(info))
    data = report.to_dict()
    assert json.loads(json.dumps(data))["signals"][0]["key"] == "parameters"
    assert "a\\|b c" in report.to_markdown()


def test_c2pa_checker_busy_skips_instead_of_piling_up(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("c2pa")
    import threading

    slots = threading.BoundedSemaphore(1)
    slots.acquire()  # every slot held by a (pretend) stuck read
    monkeypatch.setattr(metadata, "_C2PA_SLOTS", slots)
    report = read_metadata(_jpeg(comment=b"c2pa"))
    assert any("busy" in signal.value for signal in report.signals)
