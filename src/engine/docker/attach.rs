//! A RUN container's life after create on a [`DockerEngine`]: attach (before start, or the
//! first output is lost), start, drain the multiplexed output into lines, wait for the exit
//! code; on cancel, kill and remove.

use bollard::container::LogOutput;
use bollard::errors::Error as Bollard;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, KillContainerOptions, WaitContainerOptions,
};
use futures::stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::super::error::{EngineError, Result};
use super::super::output::{LineSplitter, OutputStream};
use super::super::{ContainerId, Engine, OutputSink};
use super::DockerEngine;

impl DockerEngine {
    /// Reads a container's or an exec's multiplexed output into lines.
    pub(super) async fn drain(
        &self,
        id: &ContainerId,
        mut out: std::pin::Pin<
            Box<dyn futures::Stream<Item = std::result::Result<LogOutput, Bollard>> + Send>,
        >,
        output: OutputSink<'_>,
    ) -> Result<()> {
        let mut stdout = LineSplitter::new(OutputStream::Stdout);
        let mut stderr = LineSplitter::new(OutputStream::Stderr);
        while let Some(item) = out.next().await {
            let lines = match item.map_err(|source| EngineError::Output {
                id: id.0.clone(),
                source,
            })? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    stdout.push(&message)
                }
                LogOutput::StdErr { message } => stderr.push(&message),
                LogOutput::StdIn { .. } => Vec::new(),
            };
            lines.into_iter().for_each(output);
        }
        stdout.finish().into_iter().for_each(output);
        stderr.finish().into_iter().for_each(output);
        Ok(())
    }

    pub(super) async fn run(
        &self,
        id: &ContainerId,
        output: OutputSink<'_>,
        cancel: &CancellationToken,
    ) -> Result<i64> {
        let work = async {
            let opts = AttachContainerOptionsBuilder::default()
                .stream(true)
                .stdout(true)
                .stderr(true)
                .build();
            let attached = self
                .docker
                .attach_container(&id.0, Some(opts))
                .await
                .map_err(|source| EngineError::Attach {
                    id: id.0.clone(),
                    source,
                })?;
            Engine::start_container(self, id).await?;
            self.drain(id, attached.output, output).await?;
            let mut wait = self
                .docker
                .wait_container(&id.0, None::<WaitContainerOptions>);
            match wait.next().await {
                Some(Ok(resp)) => Ok(resp.status_code),
                // bollard reports a non-zero exit as an error: it is a result here.
                Some(Err(Bollard::DockerContainerWaitError { code, .. })) => Ok(code),
                Some(Err(source)) => Err(EngineError::Wait {
                    id: id.0.clone(),
                    source,
                }),
                None => Err(EngineError::NoExitCode { id: id.0.clone() }),
            }
        };
        tokio::select! {
            res = work => res,
            _ = cancel.cancelled() => self.abandon(id).await,
        }
    }

    /// What a cancelled RUN or exec ends with: the container killed and removed, then
    /// [`EngineError::Cancelled`].
    pub(super) async fn abandon(&self, id: &ContainerId) -> Result<i64> {
        // Kill first so a process ignoring SIGTERM does not hold removal up; errors are
        // fine (it may have exited), removal below is what counts.
        let _ = self
            .docker
            .kill_container(&id.0, None::<KillContainerOptions>)
            .await;
        self.force_remove(id).await?;
        Err(EngineError::Cancelled { id: id.0.clone() })
    }
}
