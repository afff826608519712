"""OpenAI Agents SDK tool round trip: an agent with one function tool, on the Responses API
(the SDK's default model class), tracing off.

    agents_sdk.py MODEL BASE_URL KEY TOKEN      exits 0 when the tool ran and the agent answered
"""

import asyncio
import sys

from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai import AsyncOpenAI

MODEL, BASE, KEY, TOKEN = sys.argv[1:5]
calls = []


@function_tool
def get_note(topic: str) -> str:
    """Returns the note for a topic."""
    calls.append(topic)
    return TOKEN


async def main():
    set_tracing_disabled(True)
    client = AsyncOpenAI(base_url=BASE, api_key=KEY, max_retries=0)
    agent = Agent(name="harness", instructions="Answer with the note's content.",
                  model=OpenAIResponsesModel(model=MODEL, openai_client=client),
                  tools=[get_note])
    result = await Runner.run(agent, "What does the note for the harness say?", max_turns=4)
    print(f"tool_calls={len(calls)} output={result.final_output!r}")
    if not calls or not result.final_output:
        sys.exit("no tool round trip")


asyncio.run(main())
