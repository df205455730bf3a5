#!/usr/bin/env bash
# Regenerate every caller clip in clips/ from clips.tsv (name, voice, wpm, text).
# espeak-ng speaks the line; sox turns it into what a phone line delivers: 8 kHz mono
# PCM16, 300-3400 Hz band, peak about -3 dBFS, 0.3 s of silence before and 0.5 s after.
# Deterministic: no noise, no dither (-D), repeatable mode (-R); running it twice
# gives byte-identical files.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
list="$here/clips.tsv"
out="$here/clips"

for tool in espeak-ng sox; do
    command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y espeak-ng sox" >&2; exit 1; }
done

mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

count=0
while IFS=$'\t' read -r name voice wpm text; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    # " | " in the text is a caller pausing mid-sentence for a second ("The number is |
    # one, zero, zero, three."): each part is spoken alone and the parts joined by silence.
    if [[ "$text" != *" | "* ]]; then
        raw="$tmp/$name.raw.wav"
        espeak-ng -v "$voice" -s "$wpm" -w "$raw" -- "$text"
        # espeak-ng's own leading/trailing silence is trimmed first so the padding is exact;
        # the band-pass runs at the source rate, before resampling, so `rate` sees a clean band.
        sox -D -R --no-show-progress "$raw" -r 8000 -c 1 -b 16 -e signed-integer "$tmp/$name.wav" \
            silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
            sinc 300-3400 rate -v 8000 norm -3 pad 0.3 0.5
    else
        parts=()
        i=0
        while IFS= read -r part; do
            raw="$tmp/$name.$i.raw.wav"
            espeak-ng -v "$voice" -s "$wpm" -w "$raw" -- "$part"
            sox -D -R --no-show-progress "$raw" -r 8000 -c 1 -b 16 -e signed-integer \
                "$tmp/$name.$i.wav" silence 1 0.01 0.1% reverse silence 1 0.01 0.1% reverse \
                sinc 300-3400 rate -v 8000
            [[ $i -gt 0 ]] && parts+=("$tmp/pause.wav")
            parts+=("$tmp/$name.$i.wav")
            i=$((i + 1))
        done < <(printf '%s\n' "$text" | sed 's/ | /\n/g')
        [[ -f "$tmp/pause.wav" ]] ||
            sox -D -R -n -r 8000 -c 1 -b 16 -e signed-integer "$tmp/pause.wav" trim 0 1.0
        sox -D -R --no-show-progress "${parts[@]}" "$tmp/$name.wav" norm -3 pad 0.3 0.5
    fi
    mv "$tmp/$name.wav" "$out/$name.wav"
    count=$((count + 1))
done < "$list"

echo "wrote $count clips to $out"
