"""Writes LeNet-5, as splitpipe's built-in lenet5 builds it, as a TorchScript file.

    script_lenet5.py OUT.pt SEED [pretrained CSV_DIR]

The top-level children are the five blocks (conv1, conv2, fc1, fc2, fc3), drawn from SEED in
the built-in model's order, so both start from the same weights. With `pretrained`, it instead
writes a small classifier fitted to CSV_DIR/train.csv and prints its accuracy on
CSV_DIR/test.csv (features standardised with the training split's statistics, as splitpipe does).
"""
import collections
import sys
import warnings

import torch

warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit.script is deprecated upstream
nn = torch.nn


def lenet5():
    return nn.Sequential(collections.OrderedDict(
        conv1=nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)),
        conv2=nn.Sequential(nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)),
        fc1=nn.Sequential(nn.Flatten(), nn.Linear(400, 120), nn.ReLU()),
        fc2=nn.Sequential(nn.Linear(120, 84), nn.ReLU()),
        fc3=nn.Sequential(nn.Linear(84, 10))))


def read_csv(path):
    rows = [list(map(float, line.split(","))) for line in open(path) if line.strip()]
    data = torch.tensor(rows, dtype=torch.float32)
    return data[:, :-1], data[:, -1].long()


def pretrained(csv_dir):
    """Three blocks (a splitpipe partition needs one for the server); weights fitted by full-batch
    gradient descent in Python."""
    x, y = read_csv(f"{csv_dir}/train.csv")
    tx, ty = read_csv(f"{csv_dir}/test.csv")
    mean, std = x.mean(0, keepdim=True), x.std(0, unbiased=False, keepdim=True)
    x, tx = (x - mean) / std, (tx - mean) / std
    model = nn.Sequential(collections.OrderedDict(
        hidden1=nn.Sequential(nn.Linear(x.shape[1], 8), nn.ReLU()),
        hidden2=nn.Sequential(nn.Linear(8, 8), nn.ReLU()),
        out=nn.Sequential(nn.Linear(8, 2))))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        accuracy = (model(tx).argmax(1) == ty).float().mean().item()
    return model, accuracy


def main():
    out, seed = sys.argv[1], int(sys.argv[2])
    torch.manual_seed(seed)
    if len(sys.argv) > 3 and sys.argv[3] == "pretrained":
        model, accuracy = pretrained(sys.argv[4])
        print(f"{accuracy:.6f}")
    else:
        model = lenet5()
    torch.jit.script(model).save(out)


if __name__ == "__main__":
    main()
