"""The baseline: the original issue's relay (shared/ORIGINAL_ISSUE.md), kept as it was.

The endpoint below is the sketch's `collab_ws.py`, verbatim: it awaits
`send_json` to each other client in turn (one slow reader stalls the room),
prints every message, re-serialises per recipient and keeps state in a dict.
The only additions are what it needs to run: an app around the router and a
`__main__` that starts uvicorn (the same server stack as ours).

    python bench/peers/naive_relay.py --host 127.0.0.1 --port 8001
"""

import argparse
import json

import uvicorn
from fastapi import APIRouter, FastAPI, WebSocket, WebSocketDisconnect

router = APIRouter()

# In-memory store for active connections and graph states (for simplicity)
active_connections: dict[str, list[WebSocket]] = {}
graph_annotations: dict[str, dict] = {} # Stores current state of annotations per graph

@router.websocket("/ws/collaborate/{graph_id}")
async def websocket_endpoint(websocket: WebSocket, graph_id: str):
    await websocket.accept()
    if graph_id not in active_connections:
        active_connections[graph_id] = []
        graph_annotations[graph_id] = {} # Initialize annotations for new graph
    active_connections[graph_id].append(websocket)
    print(f"Client connected to graph {graph_id}. Total: {len(active_connections[graph_id])}")

    try:
        # Send initial state to new client
        await websocket.send_json({"type": "initial_state", "data": graph_annotations[graph_id]})

        while True:
            data = await websocket.receive_text()
            message = json.loads(data)
            print(f"Received message for {graph_id}: {message}")

            if message["type"] == "annotation_update":
                # Apply update (simple last-write-wins for now)
                annotation_id = message["payload"]["id"]
                graph_annotations[graph_id][annotation_id] = message["payload"]

                # Broadcast to all other connected clients for this graph
                for connection in active_connections[graph_id]:
                    if connection != websocket: # Don't send back to sender
                        await connection.send_json(message)

    except WebSocketDisconnect:
        active_connections[graph_id].remove(websocket)
        print(f"Client disconnected from graph {graph_id}. Remaining: {len(active_connections[graph_id])}")
    except Exception as e:
        print(f"WebSocket error for {graph_id}: {e}")


# --- added to run the sketch --------------------------------------------------

app = FastAPI()
app.include_router(router)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
