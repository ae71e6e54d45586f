"""The relay's answer tells the publishing browser to start its video at the lesson's rate."""

from __future__ import annotations

from passthrough.peer import with_start_bitrate

OFFERED = "\r\n".join(
    [
        "v=0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96",
        "a=rtpmap:96 opus/48000/2",
        "a=fmtp:96 minptime=10",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "m=video 9 UDP/TLS/RTP/SAVPF 100",
        "a=rtpmap:100 H264/90000",
        "a=fmtp:100 profile-level-id=42e01f",
        "",
    ]
)


def test_video_codecs_get_the_start_bitrate_and_nothing_else_changes() -> None:
    answer = with_start_bitrate(OFFERED, 900).split("\r\n")
    assert "a=fmtp:96 minptime=10" in answer  # audio, though its payload type is VP8's elsewhere
    assert (
        answer[answer.index("a=rtpmap:96 VP8/90000") + 1] == "a=fmtp:96 x-google-start-bitrate=900"
    )
    assert "a=fmtp:97 apt=96" in answer  # RTX untouched
    assert "a=fmtp:100 profile-level-id=42e01f;x-google-start-bitrate=900" in answer
    assert len(answer) == len(OFFERED.split("\r\n")) + 1


def test_it_is_added_once() -> None:
    once = with_start_bitrate(OFFERED, 900)
    assert with_start_bitrate(once, 900) == once
