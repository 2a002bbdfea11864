"""Print the IAM roles the SAM transform gives template.yaml's functions.

Runs aws-sam-translator on the template, as `sam deploy` has CloudFormation
do, and prints one JSON object keyed by each function's logical id:

  statements   every statement of the function's role: its inline policies
               and the documents of its AWS managed policies (as moto holds
               them), each with the policy it came from
  eventSources the ARNs of the event source mappings that invoke it
  deadLetter   the ARN of its asynchronous dead-letter target, or null

Intrinsic functions (Ref, Fn::GetAtt, Fn::Sub) are left as they are; the Go
side resolves them. Usage: python3 roles.py path/to/template.yaml
"""

import json
import os
import sys

try:
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse
    from moto.iam.aws_managed_policies import aws_managed_policies_data
except ImportError as err:
    sys.exit(f"roles.py needs aws-sam-translator and moto for python3: {err}")


class NoManagedPolicyLookup:
    """The translator's managed-policy loader, asked only for policy names
    a template lists by name; this template lists none."""

    def load(self):
        return {}


def main(path):
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with open(path, encoding="utf-8") as f:
        tpl = yaml_parse(f.read())
    # sam package would replace the local CodeUri with an S3 location; the
    # translator accepts only that form.
    tpl.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://bucket/key"
    for res in tpl["Resources"].values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {}).pop("CodeUri", None)
    out = transform(tpl, {}, NoManagedPolicyLookup())
    resources = out["Resources"]
    managed = json.loads(aws_managed_policies_data)

    roles = {}
    for fid, res in resources.items():
        if res["Type"] != "AWS::Lambda::Function":
            continue
        props = res["Properties"]
        role_id = props["Role"]["Fn::GetAtt"][0]
        role = resources[role_id]["Properties"]
        statements = []
        for policy in role.get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                statements.append({"policy": policy["PolicyName"], "statement": st})
        for arn in role.get("ManagedPolicyArns", []):
            name = arn.rsplit("/", 1)[-1]
            if name not in managed:
                sys.exit(f"{fid}: managed policy {arn} is not among moto's AWS managed policies")
            for st in managed[name]["Document"]["Statement"]:
                statements.append({"policy": arn, "statement": st})
        sources = [
            r["Properties"]["EventSourceArn"]
            for r in resources.values()
            if r["Type"] == "AWS::Lambda::EventSourceMapping"
            and r["Properties"].get("FunctionName") == {"Ref": fid}
        ]
        dead = props.get("DeadLetterConfig", {}).get("TargetArn")
        roles[fid] = {"statements": statements, "eventSources": sources, "deadLetter": dead}
    json.dump(roles, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python3 roles.py template.yaml")
    main(sys.argv[1])
