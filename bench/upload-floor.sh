#!/bin/bash
# The bench's floor for moving an image into a registry: curl uploads blob files straight from disk
# (one POST + one monolithic PUT each, all at once), then PUTs the manifest. No source registry is
# read and the client hashes nothing, so no copier or pusher can finish sooner against the same
# destination: what is left is the destination registry's own cost of taking the bytes in.
#
# upload-floor.sh HOST REPOSITORY MANIFEST_FILE MANIFEST_MEDIA_TYPE BLOB_FILE...
# Each BLOB_FILE is named by its sha256 hex (an OCI layout's blobs/sha256/<hex>).
set -euo pipefail
host=$1 repository=$2 manifest=$3 media_type=$4
shift 4

upload() {
  local file=$1 location separator
  location=$(curl -sS -f -o /dev/null -D - -X POST "http://$host/v2/$repository/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $location in http*) ;; *) location="http://$host$location" ;; esac
  case $location in *\?*) separator='&' ;; *) separator='?' ;; esac
  curl -sS -f -o /dev/null -X PUT -H 'content-type: application/octet-stream' -T "$file" "$location${separator}digest=sha256:$(basename "$file")"
}

pids=()
for file in "$@"; do
  upload "$file" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
curl -sS -f -o /dev/null -X PUT -H "content-type: $media_type" --data-binary @"$manifest" "http://$host/v2/$repository/manifests/latest"
