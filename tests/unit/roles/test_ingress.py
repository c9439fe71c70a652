"""test_services' Ingress for api-gateway (real clusters: the seeds' https://api.seo-tool.com),
rendered the way the role renders it (Ansible's template lookup). The lab has no ingress
controller: the trainee shell serves the name there (docs/trainees.md)."""
from pathlib import Path

import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import lookup_loader
from ansible.template import Templar

ROLE = Path(__file__).resolve().parents[3] / "roles" / "test_services"


def render(**overrides):
    variables = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    variables.update(overrides, role_path=str(ROLE), ansible_search_path=[str(ROLE)])
    loader = DataLoader()
    lookup = lookup_loader.get("template", loader=loader, templar=Templar(loader=loader, variables=variables))
    return yaml.safe_load(lookup.run([str(ROLE / "templates" / "ingress.yaml.j2")], variables=variables)[0])


def _service_port_names():
    """The api-gateway Service's port names, from the stack's own template (not rendered)."""
    text = (ROLE / "templates" / "python-services.yaml.j2").read_text()
    return {line.split("name:")[1].split(",")[0].strip() for line in text.splitlines()
            if "port: 80" in line and "name:" in line}


def test_ingress_with_tls_and_class_routes_the_host_to_api_gateway():
    ingress = render(test_services_namespace="team-a", test_services_ingress_host="api.seo-tool.com",
                     test_services_ingress_tls_secret="seo-tool-tls", test_services_ingress_class="nginx")
    assert ingress["kind"] == "Ingress" and ingress["metadata"]["namespace"] == "team-a"
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["api.seo-tool.com"], "secretName": "seo-tool-tls"}]
    rule = ingress["spec"]["rules"][0]
    assert rule["host"] == "api.seo-tool.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == "api-gateway" and backend["port"]["name"] in _service_port_names()


def test_ingress_without_tls_or_class_leaves_them_to_the_cluster():
    ingress = render(test_services_ingress_host="api.example.org")
    assert "tls" not in ingress["spec"] and "ingressClassName" not in ingress["spec"]
    assert ingress["metadata"]["labels"]["app.kubernetes.io/part-of"] == "opsdrill-seo-tool"
