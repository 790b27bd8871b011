#!/usr/bin/env bash
# Extract IKEv1 (ISAKMP) messages, their decrypted bodies, all key material and the first ESP
# packets from a decryptable interop capture into test vectors for the ike crate.
#
# usage: extract.sh SAMPLE_DIR [OUT_DIR]
#   SAMPLE_DIR  e.g. /work/shared/interop/samples/strongswan-server-windows10
#               needs client.pcap (classic pcap, Ethernet), wireshark/esp_sa,
#               wireshark/ikev1_decryption_table, ipsec.conf, charon.log; uses xfrm-state.txt,
#               result.env and ../libreswan-server-pluto-excerpt.log when present
#   OUT_DIR     defaults to the directory this script lives in (ike/testdata)
# writes OUT_DIR/<name>-isakmp.hex, <name>-isakmp-decrypted.hex, <name>-keys.txt,
#        <name>-esp.hex, <name>-esp-plain.hex        (<name> = basename of SAMPLE_DIR)
# needs: tshark (made with 4.0.17), python3; python3-cryptography is optional (used only to
#        cross-check tshark's ISAKMP decryption and to decrypt retransmissions tshark garbles)
# env:   PSK (default interop-test-psk, the interop README's PSK), ESP_COUNT (default 6)
set -euo pipefail

sample=$(cd "${1:?usage: extract.sh SAMPLE_DIR [OUT_DIR]}" && pwd)
out=${2:-$(cd "$(dirname "$0")" && pwd)}
name=$(basename "$sample")
pcap=$sample/client.pcap

args=(-o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE)
while read -r r; do [[ -n $r ]] && args+=(-o "uat:esp_sa:$r"); done < "$sample/wireshark/esp_sa"
while read -r r; do [[ -n $r ]] && args+=(-o "uat:ikev1_decryption_table:$r"); done < "$sample/wireshark/ikev1_decryption_table"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. per ISAKMP frame: tshark's payload list (isakmp.typepayload, all nesting levels), vendor-ID
#    names, notify types, malformed flag, Info column
tshark -r "$pcap" "${args[@]}" -Y isakmp -T fields -E occurrence=a -E 'aggregator=|' \
    -e frame.number -e isakmp.typepayload -e isakmp.vid_string -e isakmp.notify.msgtype \
    -e _ws.malformed -e _ws.col.Info >"$tmp/isakmp.tsv" 2>/dev/null
# 2. the "Decrypted IKE (N bytes)" data source of each encrypted ISAKMP frame (hex dump, -x)
tshark -r "$pcap" "${args[@]}" -Y isakmp -O isakmp -x >"$tmp/isakmp.txt" 2>/dev/null
# 3. per ESP frame: header fields, ICV check, decrypted data and the inner decode
tshark -r "$pcap" "${args[@]}" -Y esp -T fields -E occurrence=a -E 'aggregator=|' \
    -e frame.number -e esp.spi -e esp.sequence -e esp.iv -e esp.icv -e esp.icv_good -e esp.icv_bad \
    -e esp.decrypted_data -e esp.contained_data -e esp.pad -e esp.pad_len -e esp.protocol \
    -e _ws.col.Protocol -e _ws.col.Info >"$tmp/esp.tsv" 2>/dev/null

mkdir -p "$out"
SAMPLE=$sample NAME=$name PCAP=$pcap OUT=$out TMP=$tmp PSK=${PSK:-interop-test-psk} \
ESP_COUNT=${ESP_COUNT:-6} TSHARK_VERSION="$(tshark --version 2>/dev/null | head -1)" \
    python3 "$(dirname "$0")/extract.py"
