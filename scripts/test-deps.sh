#!/bin/sh
# Installs what Dalaba's tests need when it is missing, with Debian's apt:
# socat (pty pairs for the serial relay), PulseAudio (a real audio server
# with a null sink) and its utilities (parecord), libasound2, and for the
# web console's browser test Chromium with a Chinese font (without it the
# screenshots show boxes).
set -eu
need=""
command -v socat >/dev/null 2>&1 || need="$need socat"
command -v pulseaudio >/dev/null 2>&1 || need="$need pulseaudio"
command -v parecord >/dev/null 2>&1 || need="$need pulseaudio-utils"
[ -e /usr/lib/x86_64-linux-gnu/libasound.so.2 ] || [ -e /usr/lib/aarch64-linux-gnu/libasound.so.2 ] || ldconfig -p 2>/dev/null | grep -q libasound.so.2 || need="$need libasound2"
command -v chromium >/dev/null 2>&1 || need="$need chromium"
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need="$need fonts-wqy-microhei"
# espeak-ng: text to speech (tts/), with its Mandarin voice cmn-latn-pinyin.
command -v espeak-ng >/dev/null 2>&1 || need="$need espeak-ng"
# lame: the controller's default encoder of spoken alerts (tts.encode, MP3).
command -v lame >/dev/null 2>&1 || need="$need lame"
# iproute2 (ip netns, veth pairs) and util-linux (mount): the fault
# scenarios cut links between namespaces and give a terminal a small tmpfs.
command -v ip >/dev/null 2>&1 || need="$need iproute2"
command -v mount >/dev/null 2>&1 || need="$need mount"
[ -z "$need" ] && exit 0
echo "installing test dependencies:$need"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need
