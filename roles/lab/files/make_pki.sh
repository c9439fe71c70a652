#!/usr/bin/env bash
# Small openssl CA for the lab: server, client and service-account keys, and one
# kubeconfig per identity (certificates embedded, so a trainee can copy theirs).
#
# usage: make_pki.sh LAB_DIR NODE_NAME NODE_IP KUBERNETES_SVC_IP TRAINEE_GROUP [TRAINEE...]
#
# Trainees and trainers (env LAB_TRAINERS, space separated, group LAB_TRAINER_GROUP) also
# get a bearer token in pki/tokens.csv (the API server's --token-auth-file) and in their
# kubeconfig: the incident desk asks the API server (TokenReview) who a token belongs to,
# so a desk entry names the same user as the audit log. Trainers get a token only.
#
# Idempotent: existing keys and certificates are kept, so re-running changes nothing.
# Prints "changed" when it created anything.
set -euo pipefail

lab=$1 node_name=$2 node_ip=$3 svc_ip=$4 trainee_group=$5
shift 5
pki="$lab/pki" kcfg="$lab/kubeconfigs"
server="https://$node_ip:6443"
mkdir -p "$pki" "$kcfg"
chmod 0700 "$pki"
changed=0
days=3650

if [[ ! -f "$pki/ca.crt" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -sha256 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -subj "/CN=opsdrill-lab-ca" 2>/dev/null
  changed=1
fi
if [[ ! -f "$pki/sa.key" ]]; then
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  changed=1
fi

# etcd has a CA of its own: it trusts every certificate its CA signed, and the cluster CA
# signs the trainees' certificates too.
if [[ ! -f "$pki/etcd-ca.crt" ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days "$days" -sha256 \
    -keyout "$pki/etcd-ca.key" -out "$pki/etcd-ca.crt" -subj "/CN=opsdrill-lab-etcd-ca" 2>/dev/null
  changed=1
fi

# issue NAME SUBJECT EXT_USAGE [SAN] [CA]
issue() {
  local name=$1 subject=$2 usage=$3 san=${4:-} ca=${5:-ca}
  [[ -f "$pki/$name.crt" ]] && return 0
  local ext
  ext=$(mktemp)
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } > "$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$pki/$name.key" -out "$pki/$name.csr" -subj "$subject" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -CAcreateserial \
    -days "$days" -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$ext" "$pki/$name.csr"
  chmod 0600 "$pki/$name.key"
  changed=1
}

# token USER GROUP: the user's bearer token (kept in pki/tokens.csv once made)
tokens="$pki/tokens.csv"
touch "$tokens"
chmod 0600 "$tokens"
token() {
  local user=$1 group=$2 line
  line=$(awk -F, -v u="$user" '$2 == u {print $1}' "$tokens")
  if [[ -z "$line" ]]; then
    line=$(openssl rand -hex 24)
    printf '%s,%s,%s,"%s"\n' "$line" "$user" "$user" "$group" >> "$tokens"
  fi
  printf '%s' "$line"
}

# kubeconfig NAME USER CERT_NAME [TOKEN]: CERT_NAME "-" for a token-only user
kubeconfig() {
  local name=$1 user=$2 cert=$3 tok=${4:-} file="$kcfg/$1.kubeconfig" cred=""
  [[ -f "$file" ]] && return 0
  if [[ "$cert" != "-" ]]; then
    cred="      client-certificate-data: $(base64 -w0 "$pki/$cert.crt")
      client-key-data: $(base64 -w0 "$pki/$cert.key")"
  fi
  if [[ -n "$tok" ]]; then
    cred="${cred:+$cred
}      token: $tok"
  fi
  umask 077
  cat > "$file" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: opsdrill-lab
    cluster:
      server: $server
      certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
  - name: $user
    user:
$cred
contexts:
  - name: $user@opsdrill-lab
    context:
      cluster: opsdrill-lab
      user: $user
current-context: $user@opsdrill-lab
EOF
  umask 022
  changed=1
}

issue apiserver "/CN=kube-apiserver" serverAuth \
  "IP:$node_ip,IP:$svc_ip,IP:127.0.0.1,DNS:localhost,DNS:$node_name,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
issue kubelet "/O=system:nodes/CN=system:node:$node_name" "serverAuth,clientAuth" "IP:$node_ip,DNS:$node_name"
issue admin "/O=system:masters/CN=opsdrill-admin" clientAuth
issue kube-controller-manager "/CN=system:kube-controller-manager" clientAuth
issue kube-scheduler "/CN=system:kube-scheduler" clientAuth
issue kube-proxy "/CN=system:kube-proxy" clientAuth
issue coredns "/CN=opsdrill:coredns" clientAuth
issue etcd-server "/CN=opsdrill-lab-etcd" serverAuth "IP:127.0.0.1,DNS:localhost" etcd-ca
issue apiserver-etcd-client "/CN=kube-apiserver-etcd-client" clientAuth "" etcd-ca

kubeconfig admin opsdrill-admin admin
kubeconfig kubelet "system:node:$node_name" kubelet
kubeconfig kube-controller-manager system:kube-controller-manager kube-controller-manager
kubeconfig kube-scheduler system:kube-scheduler kube-scheduler
kubeconfig kube-proxy system:kube-proxy kube-proxy
kubeconfig coredns opsdrill:coredns coredns

mkdir -p "$kcfg/trainees"
for trainee in "$@"; do
  issue "trainee-$trainee" "/O=$trainee_group/CN=$trainee" clientAuth
  kubeconfig "trainees/$trainee" "$trainee" "trainee-$trainee" "$(token "$trainee" "$trainee_group")"
done
mkdir -p "$kcfg/trainers"
for trainer in ${LAB_TRAINERS:-}; do
  kubeconfig "trainers/$trainer" "$trainer" - "$(token "$trainer" "${LAB_TRAINER_GROUP:-opsdrill:trainers}")"
done

[[ $changed -eq 1 ]] && echo changed || echo unchanged
